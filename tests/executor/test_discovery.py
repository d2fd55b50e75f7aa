"""The executor's Home Assistant entities and the small last decision it publishes for them (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.executor.discovery import SUMMARY_MAX, discovery, last_decision
from shared.bus import Bus
from shared.ha import check_discovery
from shared.models import AppliedDecision, RuleOutcome
from shared.settings import ServiceSettings

NOW = datetime(2024, 1, 15, 16, 5, tzinfo=UTC)


def applied(**kw) -> AppliedDecision:
    base = dict(
        generated_at=NOW, decision_id="d-1", plan_id="p", mode="auto", dry_run=False, requested_action="charge",
        action="self_use", outcome="applied", soc_pct=41.5,
        rules=[RuleOutcome(rule="stale_inputs", verdict="pass"),
               RuleOutcome(rule="peak_window", verdict="changed", detail="16:00-19:00 is the peak: no grid charging")],
    )  # fmt: skip
    return AppliedDecision(**{**base, **kw})


def test_last_decision_says_what_happened_and_which_rule_changed_it() -> None:
    last = last_decision(applied())
    assert last.rule == "peak_window" and last.requested_action == "charge" and last.action == "self_use"
    assert last.summary == "The battery powers the house (applied): 16:00-19:00 is the peak: no grid charging"
    assert len(last.model_dump_json()) < 500  # the whole AppliedDecision carries configs and every rule
    aside = last_decision(applied(action=None, outcome="stood_aside", rules=[]))
    assert aside.summary.startswith("Standing aside") and aside.rule is None
    long = last_decision(applied(rules=[RuleOutcome(rule="bounds", verdict="blocked", detail="x" * 500)]))
    assert len(long.summary) == SUMMARY_MAX and long.summary.endswith("…")


def test_every_executor_entity_passes_the_discovery_checks() -> None:
    bus = Bus(ServiceSettings(), "executor")
    found = discovery(bus)
    assert {t.split("/")[1] for t, _ in found} == {"sensor", "select", "switch", "binary_sensor", "button"}
    assert {t: check_discovery(t, p) for t, p in found if check_discovery(t, p)} == {}
    overrides = [p for t, p in found if "/button/" in t]
    assert len(overrides) == 4 and all(p["command_topic"].endswith("executor/cmd/override") for p in overrides)
    names = [p["name"] for _, p in found]
    assert "Battery level" in names and not any("_" in n for n in names)
    override = next(p for _, p in found if p["name"] == "Battery override")  # the override in force, as a line
    assert override["state_topic"].endswith("executor/override") and "state_class" not in override
    assert override["value_template"] == "{{ value_json.summary }}"
