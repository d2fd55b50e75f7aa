"""The Dockerfile without a Docker engine: its rules read from the file, its install step run for real (slow).

This machine has no Docker engine, so ``docker build`` is not run here. The build's only install step is
``tools/install_deps.py``; ``make image-check`` (``-m slow``) runs that same script into a fresh virtual environment
and starts the image's entry points from a copy of exactly what the Dockerfile copies.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import install_deps

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")  # continuation lines joined
BUILD_TOOLS = re.compile(r"\b(apt-get|apk|gcc|g\+\+|build-essential|make|cmake|cargo|rustc)\b")


def stages() -> list[str]:
    body = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    return re.split(r"(?m)^FROM ", "\n".join(body))[1:]


def copied_paths() -> list[str]:
    return re.findall(r"(?m)^COPY (?!--from)(\S+)", DOCKERFILE)


def test_base_image_is_a_slim_python_pinned_by_version() -> None:
    base = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE)
    assert base, "the base image is set once, in ARG PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base.group(1))
    build, runtime, sim, services = stages()
    assert build.startswith("${PYTHON_IMAGE}") and runtime.startswith("${PYTHON_IMAGE}")
    assert sim.startswith("runtime AS sim") and services.startswith("runtime AS services")


def test_multi_stage_with_a_non_root_final_stage_and_no_build_tools() -> None:
    build, runtime, sim, services = stages()
    assert "AS build" in build and "AS runtime" in runtime
    # the default target (the last stage) is the services' image as it is; the simulators' adds pandas alone
    assert services.strip() == "runtime AS services", "the default target adds nothing to the runtime"
    assert "COPY --from=build /opt/sim-packages /opt/sim-packages" in sim and "RUN" not in sim
    assert "tools/install_deps.py" in build
    final = runtime.split("\n")
    assert not any(BUILD_TOOLS.search(line) for line in final if line.startswith("RUN")), "build tools in runtime"
    user = re.search(r"(?m)^USER (\S+)$", runtime)
    assert user and not user.group(1).startswith(("root", "0")), "the services run unprivileged"
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert re.search(r"(?m)^HEALTHCHECK .*tools\.healthcheck", runtime)


def test_the_planner_kernel_is_compiled_at_build_into_a_cache_the_services_can_use() -> None:
    """numba compiles the DP on first use (seconds); the image ships it compiled, at the path it was built at."""
    build, runtime, _, _ = stages()
    cache = re.search(r"NUMBA_CACHE_DIR=(\S+)", build)
    # install_deps.py --prune --app runs `python -m services.planner.dp_kernel` (checked by the slow test below)
    assert cache and re.search(r"(?m)^RUN .*install_deps\.py .*--prune --app /app", build), "the build warms the kernel"
    assert f"NUMBA_CACHE_DIR={cache.group(1)}" in runtime
    assert re.search(rf"(?m)^COPY --from=build --chown=batsched\S* {cache.group(1)} {cache.group(1)}$", runtime)
    workdirs = re.findall(r"(?m)^WORKDIR (\S+)$", DOCKERFILE)
    assert len(set(workdirs)) == 1, "numba keys its cache on the source path: build and run from the same directory"


def test_the_image_gets_every_package_the_services_import_and_nothing_secret() -> None:
    copied = {p.rstrip("/").split("/")[0] for p in copied_paths()}
    assert {"shared", "services", "sim", "tools", "pyproject.toml"} <= copied
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, ".dockerignore starts from nothing (no .env, secrets, data)"
    for path in copied:
        assert (ROOT / path).exists(), path
        assert f"!{path}" in ignore or f"!{path}/" in ignore, f"{path} is copied but ignored"


def test_install_step_is_pinned_and_wheels_only() -> None:
    reqs = install_deps.requirements()
    assert reqs and all("==" in r for r in reqs)
    cmd = install_deps.pip_command("/opt/venv/bin/python", reqs)
    assert "--only-binary=:all:" in cmd and "--no-cache-dir" in cmd


def test_an_unpinned_dependency_stops_the_build(tmp_path: Path) -> None:
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\ndependencies = ["paho-mqtt==2.2.0", "requests>=2"]\n')
    with pytest.raises(SystemExit, match="requests>=2"):
        install_deps.requirements(bad)


@pytest.mark.slow
@pytest.mark.timeout(900)  # two pip installs from the index, the strip and the kernel's compile
def test_the_dockerfile_install_step_builds_a_working_environment(tmp_path: Path) -> None:
    """``make image-check``: the build stage's commands, then the runtime's entry points, without Docker."""
    venv = tmp_path / "opt-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    app = tmp_path / "app"
    app.mkdir()
    for path in copied_paths():
        src = ROOT / path.rstrip("/")
        if src.is_dir():
            shutil.copytree(src, app / src.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(src, app / src.name)
    done = subprocess.run(
        [python, str(app / "tools" / "install_deps.py"), "--python", python],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    modules = ["shared.bus", "shared.runner", "shared.ha", "tools.healthcheck", "tools.settings_doc"]
    for pkg in ("services", "sim"):
        for sub in sorted((app / pkg).iterdir()):
            if (sub / "__init__.py").exists():
                modules.append(f"{pkg}.{sub.name}")
            elif sub.suffix == ".py" and sub.stem != "__init__":
                modules.append(f"{pkg}.{sub.stem}")
    # the simulators' pandas, as the Dockerfile's sim target gets it
    sim_packages = tmp_path / "sim-packages"
    done = subprocess.run(
        [
            python,
            str(app / "tools" / "install_deps.py"),
            "--python",
            python,
            "--extra",
            "sim",
            "--target",
            str(sim_packages),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (sim_packages / "pandas").is_dir() and not (sim_packages / "pandas" / "tests").exists()
    probe = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')"
    sim_env = {"PATH": "/usr/bin", "PYTHONPATH": str(sim_packages)}
    ran = subprocess.run(
        [python, "-c", probe, *modules], cwd=app, capture_output=True, text=True, timeout=120, env=sim_env
    )
    assert ran.returncode == 0 and ran.stdout.startswith("ok"), ran.stderr[-2000:]
    help_ = subprocess.run([python, "-m", "tools.healthcheck", "--help"], cwd=app, capture_output=True, timeout=60)
    assert help_.returncode == 0
    env = {"PATH": "/usr/bin", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    site = Path(install_deps.site_packages(python))
    assert (site / "numpy" / "tests").is_dir() and (site / "pip").is_dir()
    assert not (site / "pandas").exists(), "pandas is for the simulators' image only"
    pruned = subprocess.run(
        [python, str(app / "tools" / "install_deps.py"), "--python", python, "--prune", "--app", str(app)],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert pruned.returncode == 0, pruned.stdout[-2000:] + pruned.stderr[-2000:]
    assert "compiled" in pruned.stdout and "missing" not in pruned.stdout, pruned.stdout
    assert any((tmp_path / "numba-cache").rglob("*.nbi")), "the compiled kernel is cached for the services"
    assert not (site / "numpy" / "tests").exists() and not (site / "pip").exists() and not (site / "highspy").exists()
    assert not list((site / "numba" / "cuda").rglob("*.pyc")), "no bytecode for what no service imports"
    assert list((site / "numpy").rglob("*.pyc")), "bytecode for what the services import"
    # every entry point still imports after the prune
    again = subprocess.run(
        [python, "-c", probe, *modules], cwd=app, capture_output=True, text=True, timeout=120, env=sim_env
    )
    assert again.returncode == 0 and again.stdout.startswith("ok"), again.stderr[-2000:]
    # and the services', without the simulators' packages: none of them loads pandas
    services = [m for m in modules if not m.startswith("sim.")]
    no_pandas = probe.replace("print('ok')", "assert 'pandas' not in sys.modules, 'pandas'\nprint('ok')")
    alone = subprocess.run(
        [python, "-c", no_pandas, *services],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin"},
    )
    assert alone.returncode == 0 and alone.stdout.startswith("ok"), alone.stderr[-2000:]
