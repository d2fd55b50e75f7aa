"""``make run``'s launcher: starts a private broker and the system, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.broker import free_port
from tests.support.probe import Probe

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(marker: str) -> list[int]:
    """PIDs of live processes whose command line or environment mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in blob and state != "Z":
            found.append(int(entry.name))
    return found


def test_launcher_starts_broker_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    broker_port = free_port()
    env = {
        **os.environ,
        "BATSCHED_RUN_DIR": str(run_dir),
        "BATSCHED_RUN_BROKER_PORT": str(broker_port),
        "BATSCHED_DASHBOARD_PORT": str(free_port()),
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tools.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        assert launcher.stdout is not None
        for line in launcher.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any(f"127.0.0.1:{broker_port}" in line for line in lines), lines
        probe = Probe(broker_port).start()  # the private broker answers on the printed port
        probe.stop()
        assert len(processes_mentioning(str(run_dir))) >= 2  # launcher, broker and whatever services exist

        os.killpg(launcher.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert launcher.wait(40) == 0
        deadline = time.monotonic() + 10
        while processes_mentioning(str(run_dir)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_mentioning(str(run_dir)) == []
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
