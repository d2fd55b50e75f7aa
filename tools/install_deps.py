"""Install the project's pinned dependencies into a Python environment: the Dockerfile's one install step.

    python tools/install_deps.py --python /opt/venv/bin/python          # what the image build runs
    python tools/install_deps.py --python /opt/venv/bin/python --prune  # then: what the services never load
    python tools/install_deps.py --python .venv/bin/python --print       # show the pip command only
    python tools/install_deps.py --python /opt/venv/bin/python --extra sim --target /opt/sim-packages
                                            # one optional group alone, into a folder of its own (the sim image)

The list comes from ``pyproject.toml`` (``[project] dependencies``, plus ``--extra NAME`` groups), so the image
and ``make venv`` cannot drift apart. Every requirement must be pinned with ``==`` and is installed from wheels
only (``--only-binary=:all:``): no compiler is needed, in the build stage or anywhere else. The source tree is
not pip-installed; the image runs it from ``/app`` (``python -m services.<name>``).

``--target DIR`` installs the ``--extra`` groups alone into ``DIR`` without their dependencies (a group used this way
pins its own: ``sim``, pandas for the simulators' image, on top of the services' environment), then removes their
test suites and strips their shared objects.

``--prune`` removes from the environment what no service loads at run time: pip and setuptools themselves and the
packages' own test suites (numpy, numba, llvmlite: about 30 MB), and strips the symbol tables from the shared
objects with ``strip --strip-unneeded`` where binutils is installed (libllvmlite alone: about 19 MB; nothing
links against them, and numba compiles the planner's kernel afterwards, so a broken library fails the build);
with ``--app DIR`` it also keeps compiled
bytecode only for the modules the sources in DIR import (every module of ``shared``, ``services``, ``sim`` and
``tools.healthcheck``, and what numba loads to compile the planner's kernel), so start-up stays fast without
carrying bytecode for code that never runs (numba's CUDA target, pandas' readers of Excel, …).

pip's settings come from the environment as usual (``PIP_INDEX_URL``, ``PIP_CERT``, …); empty ones, as a Docker
build passes for an ``ARG`` nobody set, are dropped rather than handed to pip.

Runs on the standard library alone (``tomllib``), because it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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


def pip_command(python: str, reqs: list[str], target: Path | None = None) -> list[str]:
    into = ["--no-deps", "--target", str(target)] if target is not None else []
    return [python, "-m", "pip", "install", "--no-cache-dir", "--no-input", "--only-binary=:all:", *into, *reqs]


# Test suites shipped inside wheels: never imported by the services (globs relative to site-packages).
TEST_SUITES = ("pandas/tests", "numba/tests", "llvmlite/tests", "numpy/tests", "numpy/*/tests", "numpy/*/*/tests")
BOOTSTRAP = ("pip", "setuptools", "wheel", "pkg_resources", "_distutils_hack")
APP_PACKAGES = ("shared", "services", "sim")
IMPORT_ALL = """
import importlib, pathlib, sys
failed = []
names = ["tools.healthcheck"]
for pkg in sys.argv[1:]:
    for path in sorted(pathlib.Path(pkg).rglob("*.py")):
        parts = path.with_suffix("").parts
        if parts[-1] != "__main__":
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # a tool module whose extra is not in the image (services.planner.lp: highspy)
        failed.append(f"{name} ({type(exc).__name__}: {exc})")
print(f"install_deps: bytecode kept for {len(names) - len(failed)} modules and their imports", file=sys.stderr)
for line in failed:
    print(f"install_deps: not importable here: {line}", file=sys.stderr)
"""


def remove_test_suites(site: Path) -> None:
    for pattern in TEST_SUITES:
        for path in site.glob(pattern):
            shutil.rmtree(path)


def strip_shared_objects(site: Path) -> int:
    """``strip --strip-unneeded`` on the shared objects under ``site`` (when binutils is there); bytes freed."""
    if shutil.which("strip") is None:
        print("install_deps: no strip here (binutils): shared objects left as they are", file=sys.stderr)
        return 0
    freed = 0
    for path in sorted(site.rglob("*.so*")):
        # a wheel's vendored libraries (numpy.libs/…) were rewritten by patchelf, which strip breaks
        if path.is_symlink() or not path.is_file() or any(p.endswith(".libs") for p in path.parts):
            continue
        before = path.stat().st_size
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=False, capture_output=True, timeout=300)
        freed += before - path.stat().st_size
    return freed


def site_packages(python: str) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip())


def keep_used_bytecode(python: str, site: Path, app: Path) -> None:
    """Drop every compiled module, then import the app's modules once with bytecode writing on."""
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache)
    env = {k: v for k, v in pip_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-c", IMPORT_ALL, *APP_PACKAGES], cwd=app, env=env, check=True, timeout=600)
    subprocess.run([python, "-m", "services.planner.dp_kernel"], cwd=app, env=env, check=True, timeout=600)


def prune(python: str, app: Path | None = None) -> int:
    """Remove the test suites and the installers from the environment (and with ``app``, the bytecode of what the
    app never imports); returns the bytes freed."""
    site = site_packages(python)

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0

    before = size(site)
    remove_test_suites(site)
    for name in BOOTSTRAP:
        for path in [
            site / name,
            *site.glob(f"{name}-*.dist-info"),
            *site.glob("_distutils_hack"),
            *site.glob(f"{name}-*.pth"),
        ]:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    scripts = Path(python).parent
    for path in scripts.glob("pip*"):
        path.unlink()
    (site / "distutils-precedence.pth").unlink(missing_ok=True)
    strip_shared_objects(site)
    if app is not None:
        keep_used_bytecode(python, site, app)
    return before - size(site)


def pip_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not (k.startswith("PIP_") and not v.strip())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the target environment")
    parser.add_argument("--extra", action="append", default=[], help="also install this optional group")
    parser.add_argument("--print", action="store_true", help="print the pip command instead of running it")
    parser.add_argument("--prune", action="store_true", help="remove what no service loads (tests, pip itself)")
    parser.add_argument("--app", type=Path, help="with --prune: keep bytecode only for what this source tree imports")
    parser.add_argument("--target", type=Path, help="install the --extra groups alone (no dependencies) into DIR")
    args = parser.parse_args(argv)
    if args.prune:
        freed = prune(args.python, args.app) / 1e6
        print(f"install_deps: pruned {freed:.0f} MB (test suites, installers, symbol tables, bytecode)")
        return 0
    if args.target is not None:
        if not args.extra:
            parser.error("--target installs --extra groups only")
        reqs = requirements(extras=tuple(args.extra))[len(requirements()) :]
    else:
        reqs = requirements(extras=tuple(args.extra))
    cmd = pip_command(args.python, reqs, args.target)
    if args.print:
        print(" ".join(cmd))
        return 0
    rc = subprocess.run(cmd, check=False, env=pip_env()).returncode
    if rc == 0 and args.target is not None:
        remove_test_suites(args.target)
        strip_shared_objects(args.target)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
