"""The Compose demo's shared simulated clock: no BATSCHED_SIM_ORIGIN to export, every container agrees anyway.

Each container is given the same ``BATSCHED_SIM_ORIGIN_FILE`` on a shared volume; the first process to start
writes its start time there and every other one (and every restart) reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from shared.clock import SimClock, shared_sim_origin
from shared.runner import make_clock
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "from shared.runner import make_clock\n"
    "from shared.settings import ServiceSettings\n"
    "print(make_clock(ServiceSettings()).origin)\n"
)


def test_processes_started_together_agree_on_one_origin(tmp_path: Path) -> None:
    origin_file = tmp_path / "sim" / "origin"
    env = {
        **os.environ,
        "BATSCHED_CLOCK": "sim",
        "BATSCHED_SIM_START": "2024-02-12T13:00:00Z",
        "BATSCHED_SIM_ORIGIN_FILE": str(origin_file),
    }
    env.pop("BATSCHED_SIM_ORIGIN", None)
    before = time.time()
    procs = [
        subprocess.Popen([sys.executable, "-c", PROBE], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    origins = {float(p.communicate(timeout=60)[0]) for p in procs}
    assert len(origins) == 1
    (origin,) = origins
    assert before <= origin <= time.time()
    assert [p.name for p in origin_file.parent.iterdir()] == ["origin"]  # no leftovers from the race
    # a restart, much later, keeps the clock where it was
    assert shared_sim_origin(origin_file) == origin


def test_an_explicit_origin_wins_and_the_real_clock_ignores_the_file(tmp_path: Path) -> None:
    origin_file = tmp_path / "origin"
    s = ServiceSettings(clock="sim", sim_origin=1_700_000_000.0, sim_origin_file=origin_file)
    assert make_clock(s).origin == 1_700_000_000.0
    assert not isinstance(make_clock(ServiceSettings(sim_origin_file=origin_file)), SimClock)
    assert not origin_file.exists()
