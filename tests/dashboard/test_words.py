"""The words the pages use (issue 19): the headline, the next charge, power flows whose words carry the sign,
decision spans with the deciding rule in words, and text freed of Python reprs and ISO stamps. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.dashboard import headline, history_spans
from services.dashboard.words import plain, power_flows
from shared.models import Action, PowerwallConfig, Reason, RuleOutcome
from shared.peak import PeakWindow
from tests.dashboard import helpers

TZ = ZoneInfo("Europe/London")
NOW = datetime(2024, 7, 15, 1, 10, tzinfo=UTC)  # 02:10 BST


def test_headline_says_what_happens_until_when_and_why() -> None:
    plan = helpers.plan(NOW, hours=30, charge_hours=(1, 2, 3))
    slot = plan.slot_at(NOW)
    peak = PeakWindow.parse("16:00", "19:00", TZ)
    assert headline.sentence(plan, slot, "auto", 42, 0.123, peak, NOW, TZ) == (
        "Charging until 05:00 to 90 % at 12.3p — among the cheapest hours before the energy is needed."
    )
    hold = slot.model_copy(update={"action": Action.HOLD, "reason": Reason.HOLD_FOR_LATER})
    assert headline.sentence(None, hold, "auto", 64, None, peak, NOW, TZ) == "Holding at 64 % for the 16:00 peak."
    assert headline.sentence(plan, slot, "off", 42, None, peak, NOW, TZ).startswith("batsched is switched off")
    assert headline.sentence(None, None, "auto", 42, None, peak, NOW, TZ).startswith("No plan for now yet")


def test_next_charge_is_the_run_after_the_one_in_progress() -> None:
    plan = helpers.plan(NOW, hours=30, charge_hours=(1, 2, 3))
    nxt = headline.next_charge(plan, NOW, TZ)
    assert nxt is not None and nxt["text"].startswith("Tue 02:00–05:00 to 90 %, about ")
    later = NOW.replace(hour=5)
    assert headline.next_charge(plan, later, TZ)["text"].startswith("Tue 02:00–05:00")


def test_power_flows_carry_the_direction_in_words_never_a_sign() -> None:
    flows = {f["label"]: f["text"] for f in power_flows(-3300, 3850, 150, 750)}
    assert flows == {
        "Battery": "charging 3.30 kW",
        "Grid": "importing 3.85 kW",
        "Solar": "generating 150 W",
        "Home": "using 750 W",
    }
    flows = {f["label"]: f["text"] for f in power_flows(1200, -500, 0, None)}
    assert flows == {"Battery": "discharging 1.20 kW", "Grid": "exporting 500 W", "Solar": "idle", "Home": "unknown"}


def test_plain_turns_reprs_and_iso_stamps_into_words() -> None:
    text = plain(
        "read-back differs (sent {'operational_mode': 'backup', 'backup_reserve_pct': 80, 'grid_charging': True}); "
        "next after 2024-07-15T01:30:00.123456+00:00",
        TZ,
    )
    assert (
        text == "read-back differs (sent backup only, reserve 80 %, grid charging on); next after Mon 15 Jul 02:30:00"
    )


def test_decisions_group_into_spans_of_one_action_and_outcome() -> None:
    docs = []
    for i in range(6):
        d = helpers.decision(NOW + timedelta(minutes=5 * i), f"d{i}")
        d = d.model_copy(update={"outcome": "applied" if i == 0 else "unchanged", "observed": d.sent})
        docs.append(d.model_dump(mode="json"))
    blocked = helpers.decision(NOW + timedelta(minutes=30), "d6").model_copy(
        update={
            "action": Action.SELF_USE,
            "outcome": "applied",
            "rules": [RuleOutcome(rule="peak_window", verdict="blocked", detail="no grid charging 16:00–19:00 local")],
            "observed": PowerwallConfig(operational_mode="self_consumption"),
        }
    )
    docs.append(blocked.model_dump(mode="json"))
    page = history_spans.page(date(2024, 7, 15), date(2024, 7, 15), docs, TZ)
    labels = [s["label"] for s in page["spans"]]
    assert labels == [
        "02:40:00 self-use, applied",
        "02:15:00–02:35:00 charge, already set",
        "02:10:00 charge, applied",
    ]
    assert page["spans"][0]["why"] == "Peak-time rule: no grid charging 16:00–19:00 local"
    assert page["spans"][1]["why"] == "the plan asked for charge" and page["spans"][1]["count"] == 5
    assert page["spans"][1]["decisions"][0]["time"] == "02:35:00"  # newest first
    assert page["next_day"] is None and page["prev_day"] == "2024-07-14"
    assert page["decisions"] == 7
