"""Install the project's pinned dependencies into a Python environment: the Dockerfile's one install step.

    python tools/install_deps.py --python /opt/venv/bin/python          # what the image build runs
    python tools/install_deps.py --python .venv/bin/python --print       # show the pip command only

The list comes from ``pyproject.toml`` (``[project] dependencies``, plus ``--extra NAME`` groups), so the image
and ``make venv`` cannot drift apart. Every requirement must be pinned with ``==`` and is installed from wheels
only (``--only-binary=:all:``): no compiler is needed, in the build stage or anywhere else. The source tree is
not pip-installed; the image runs it from ``/app`` (``python -m services.<name>``).

Runs on the standard library alone (``tomllib``), because it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+$")


def requirements(pyproject: Path = PYPROJECT, extras: tuple[str, ...] = ()) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    loose = [r for r in reqs if not PINNED.match(r.replace(" ", ""))]
    if loose:
        raise SystemExit(f"install_deps: not pinned with == in pyproject.toml: {', '.join(loose)}")
    return reqs


def pip_command(python: str, reqs: list[str]) -> list[str]:
    return [python, "-m", "pip", "install", "--no-cache-dir", "--no-input", "--only-binary=:all:", *reqs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the target environment")
    parser.add_argument("--extra", action="append", default=[], help="also install this optional group")
    parser.add_argument("--print", action="store_true", help="print the pip command instead of running it")
    args = parser.parse_args(argv)
    cmd = pip_command(args.python, requirements(extras=tuple(args.extra)))
    if args.print:
        print(" ".join(cmd))
        return 0
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
