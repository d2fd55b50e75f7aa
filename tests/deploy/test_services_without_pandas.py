"""The services' image carries no pandas (about 40 MB): no service, nor the health check or the CLI, may load it.

The development environment has pandas (the tools, benchmarks and simulators use it), so a stray import would
pass every other test; this starts each entry point's imports in a fresh interpreter and looks.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = [
    "services.pricing.__main__",
    "services.forecast.__main__",
    "services.planner.__main__",
    "services.executor.__main__",
    "services.executor.watchdog",
    "services.accounting.__main__",
    "services.dashboard.__main__",
    "services.pricing.estimate_publisher",
    "tools.healthcheck",
    "tools.cli",
]
PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "pandas" in sys.modules:
        raise SystemExit(f"{name} loads pandas")
print("ok")
"""


def test_no_service_loads_pandas() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", PROBE, *ENTRY_POINTS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran.stderr[-2000:]


def test_the_cold_start_price_library_loads_without_pandas() -> None:
    """The pricing service's bundled Agile history (its estimate's cold start) is read without pandas."""
    code = (
        "import sys\n"
        "from services.pricing.estimate_publisher import bundled_library\n"
        "from shared.slots import LONDON\n"
        "days = bundled_library(LONDON)\n"
        "assert days is not None and len(days.values) > 900, len(days.values)\n"
        "assert 'pandas' not in sys.modules\n"
        "print('ok')\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran.stderr[-2000:]


def test_pandas_is_pinned_for_the_simulators_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [r for r in project["dependencies"] if r.lower().startswith("pandas")]
    assert any(r.startswith("pandas==") for r in project["optional-dependencies"]["sim"])
