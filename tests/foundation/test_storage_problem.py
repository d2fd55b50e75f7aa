"""``storage_problem`` names what is wrong with a data directory (SQLite itself only says "unable to open")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.runner import storage_problem
from tests.reliability.mounts import Mounts, fill_up


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    made = Mounts()
    yield made
    made.unmount_all()


def test_a_usable_directory_has_no_problem(tmp_path: Path) -> None:
    assert storage_problem(tmp_path) == ""
    assert storage_problem(tmp_path / "missing") == ""


def test_read_only_and_full_file_systems_are_named(mounts: Mounts, tmp_path: Path) -> None:
    ro = mounts.read_only(tmp_path / "ro")
    assert storage_problem(ro) == "the data directory is on a read-only file system"
    full = mounts.tmpfs(tmp_path / "full", "1m")
    fill_up(full)
    assert storage_problem(full) == "the data directory's file system is full"
