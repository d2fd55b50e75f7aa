"""Real storage faults for the whole-system tests: a small tmpfs filled up (ENOSPC) and a read-only bind mount
(EROFS). Both need root with CAP_SYS_ADMIN (CI has it: ``.ci/run`` runs as root); without it the tests skip and
say why. Root ignores permission bits, so ``chmod`` cannot make a directory read-only for these tests.

A directory cannot be made read-only under a process that has a file in it open for writing (the kernel
refuses the remount with EBUSY), so "read-only while running" is not testable this way; a full disk is the
running case, read-only is the start-up case.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


class Mounts:
    """Mounts made by one test; ``unmount_all`` (the fixture's finalizer) undoes them, even after a failure."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def _mount(self, path: Path, *args: str) -> None:
        if os.geteuid() != 0:
            pytest.skip("needs root with CAP_SYS_ADMIN to mount (CI runs as root); chmod does not bind root")
        done = _run("mount", *args, str(path))
        if done.returncode != 0:
            pytest.skip(f"mount not permitted here: {done.stderr.strip() or done.returncode}")
        self.points.append(path)

    def tmpfs(self, path: Path, size: str) -> Path:
        """A fresh tmpfs of ``size`` (e.g. ``"8m"``) at ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        self._mount(path, "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs")
        return path

    def read_only(self, path: Path) -> Path:
        """``path`` (with what it holds) turned read-only in place: a bind mount onto itself, remounted ``ro``."""
        path.mkdir(parents=True, exist_ok=True)
        self._mount(path, "--bind", str(path))
        done = _run("mount", "-o", "remount,ro,bind", str(path))
        if done.returncode != 0:
            pytest.skip(f"read-only remount not permitted here: {done.stderr.strip()}")
        return path

    def unmount_all(self) -> None:
        for path in reversed(self.points):
            if _run("umount", str(path)).returncode != 0:
                _run("umount", "-l", str(path))  # a process still has a file open: detach now, freed when it exits
        self.points.clear()


def fill_up(directory: Path) -> Path:
    """Write a filler file in ``directory`` until the file system says ENOSPC; returns it (delete it to free)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = bytes(size)
            while True:
                try:
                    if os.write(fd, block) == 0:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    stat = os.statvfs(directory)
    assert stat.f_bavail == 0, f"{directory} still has {stat.f_bavail} free blocks"
    return filler
