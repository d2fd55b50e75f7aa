"""The README's topic tree is the real one (parsed and compared with ``shared.topics``)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.topics import PLANNER_SETTINGS, SERVICES, Topics

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_topics() -> set[str]:
    block = README.split("```\nbatsched/\n", 1)[1].split("```", 1)[0]
    stack: list[str] = []
    paths: set[str] = set()
    for line in block.splitlines():
        m = re.match(r"^((?:│   |    )*)(?:├── |└── )(\S+)", line)
        if not m:
            continue
        depth = len(m.group(1)) // 4
        name = m.group(2)
        stack = [*stack[:depth], name.rstrip("/")]
        if not name.endswith("/"):  # "pricing/" is a folder, not a topic
            paths.add("/".join(stack))
    expanded = set()
    for p in paths:
        for svc in SERVICES if "<service>" in p else [None]:
            for setting in PLANNER_SETTINGS if "<setting>" in p else [None]:
                expanded.add(p.replace("<service>", svc or "").replace("<setting>", setting or ""))
    return expanded


def test_readme_topic_tree_matches_the_code() -> None:
    documented = readme_topics()
    actual = {t.removeprefix("batsched/") for t in Topics().tree().values()}
    assert actual - documented == set(), "in the code but not in the README"
    assert documented - actual == set(), "in the README but not in the code"


def test_readme_gives_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
