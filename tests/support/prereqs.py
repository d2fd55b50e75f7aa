"""What `make test` needs beyond the README's prerequisites, and the one line that says how to get each.

Tests that need one of these skip without it (``needs("chromium")``); at the end of the run the summary says, one
line per missing tool, which tests were skipped and how to install it. CI (.ci/run) installs them all.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Optional:
    name: str
    commands: tuple[str, ...]
    install: str
    skipped: str

    def missing(self) -> bool:
        if self.name == "libfaketime":
            from tests.reliability.faketime import find_libfaketime

            return find_libfaketime() is None
        return not any(shutil.which(c) for c in self.commands)

    @property
    def line(self) -> str:
        return f"{self.name} is not installed ({self.install}): {self.skipped} skipped"


OPTIONAL = {
    "chromium": Optional(
        "Chromium",
        ("chromium", "chromium-browser"),
        "apt-get install chromium",
        "the dashboard's browser tests, the seed move-over's browser part and the backtest report's rendering check",
    ),
    "node": Optional("Node.js", ("node",), "apt-get install nodejs", "the Node-RED example's function tests"),
    "docker-compose": Optional(
        "docker-compose", ("docker-compose",), "apt-get install docker-compose", "the Compose files' config check"
    ),
    "libfaketime": Optional("libfaketime", (), "apt-get install faketime", "the wall-clock step soak test (make soak)"),
}


def needs(name: str) -> pytest.MarkDecorator:
    tool = OPTIONAL[name]
    return pytest.mark.skipif(tool.missing(), reason=tool.line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [tool.line for tool in OPTIONAL.values() if tool.missing()]
    for line in lines:
        terminalreporter.write_line(f"make test: {line}", yellow=True)
