"""A Home Assistant core in its own virtual environment, for ``make test-ha`` (``tests/ha``).

``python -m tools.ha_venv`` builds (once) ``~/.cache/batsched/ha-venv`` with ``homeassistant``, the frontend it
was released with and the paho-mqtt its MQTT integration pins, on the newest pyenv (or system) Python that this
Home Assistant supports, and prints the venv's ``hass`` path. It exits 3 with one line saying why when there is
no such Python (the test then skips with that line). Home Assistant is not a project dependency: it pins hundreds
of libraries of its own, so it never shares the project's venv.

The pins: Home Assistant 2025.4 is the newest that runs on Python 3.13.0 (later releases need 3.13.2 or newer);
``HA_PINS`` lists newer pin sets first, each with the oldest Python it needs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("BATSCHED_HA_VENV", Path.home() / ".cache" / "batsched" / "ha-venv"))
NO_PYTHON = 3  # exit status: no Python that a pinned Home Assistant supports


@dataclass(frozen=True)
class Pins:
    homeassistant: str
    frontend: str  # home-assistant-frontend, the version this release's frontend integration requires
    paho_mqtt: str  # the MQTT integration's requirement
    python_min: tuple[int, int, int]
    python_below: tuple[int, int, int]

    def requirements(self) -> list[str]:
        return [
            f"homeassistant=={self.homeassistant}",
            f"home-assistant-frontend=={self.frontend}",
            f"paho-mqtt=={self.paho_mqtt}",
        ]


HA_PINS = (Pins("2025.4.4", "20250411.0", "2.1.0", (3, 13, 0), (3, 14, 0)),)


def _version_of(python: Path) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def candidate_pythons() -> list[Path]:
    """pyenv's installed CPythons, then the ones on PATH."""
    found: list[Path] = []
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if root.is_dir():
        found += [p / "bin" / "python3" for p in sorted(root.iterdir()) if (p / "bin" / "python3").exists()]
    for name in ("python3.13", "python3.14", "python3"):
        if path := shutil.which(name):
            found.append(Path(path))
    return found


def choose() -> tuple[Path, Pins] | str:
    """The newest Python with a pin set that supports it, or why there is none."""
    seen: list[str] = []
    best: tuple[tuple[int, int, int], Path, Pins] | None = None
    for python in candidate_pythons():
        v = _version_of(python)
        if v is None:
            continue
        seen.append(".".join(map(str, v)))
        for pins in HA_PINS:
            if pins.python_min <= v < pins.python_below and (best is None or v > best[0]):
                best = (v, python, pins)
                break
    if best is None:
        need = " or ".join(f"{'.'.join(map(str, p.python_min))}–<{'.'.join(map(str, p.python_below))}" for p in HA_PINS)
        return f"no Python for Home Assistant (needs {need}; found {', '.join(sorted(set(seen))) or 'none'})"
    return best[1], best[2]


def ensure(venv: Path = CACHE) -> Path:
    """Build the venv when missing or on other pins; return its ``hass``. Raises ``SystemExit(3)`` with the
    reason when no Python fits."""
    chosen = choose()
    if isinstance(chosen, str):
        print(chosen, file=sys.stderr)
        raise SystemExit(NO_PYTHON)
    python, pins = chosen
    stamp = venv / ".batsched-pins"
    want = " ".join(pins.requirements())
    hass = venv / "bin" / "hass"
    if hass.exists() and stamp.exists() and stamp.read_text() == want:
        return hass
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *pins.requirements()], check=True)
    stamp.write_text(want)
    return hass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    print(ensure(args.venv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
