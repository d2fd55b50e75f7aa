"""The Money page and the plan comparison in words (issue 19): a saving is a saving, a loss is said as a loss
and marked, never a negative saving; each strategy's end energy is shown with its value. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from services.dashboard import money_view, views
from services.dashboard.live import Entry
from tests.browser import world
from tests.dashboard import helpers

NOW = world.NOW


def entries(**docs: object) -> dict[str, Entry]:
    return {name.replace("__", "/"): Entry(doc.model_dump_json().encode(), NOW, True, 1) for name, doc in docs.items()}


def test_money_page_says_savings_and_losses_in_words() -> None:
    page = money_view.money_page(entries(accounting__money=world.money(NOW)))
    assert page["published"] and page["today"]["label"] == "Today so far, Mon 15 Jul"
    assert [d["label"] for d in page["days"]] == ["Sun 14 Jul", "Sat 13 Jul", "Fri 12 Jul"]  # newest first
    worst = page["days"][0]
    assert worst["vs_self_use"] == {"text": "cost £0.10 more", "loss": True}
    assert worst["vs_no_battery"] == {"text": "saved £1.05", "loss": False}
    assert worst["stored"] == "£0.20 drawn from the battery" and worst["paid"] == "paid £1.50"
    assert [m["label"] for m in page["months"]] == ["July 2024"]
    assert page["since_install"]["label"].startswith("Since install")
    assert set(page["meanings"]) == {"paid", "stored", "no_battery", "self_use", "vs_no_battery", "vs_self_use"}
    text = repr(page)
    assert "£-" not in text
    assert money_view.today_text(entries(accounting__money=world.money(NOW))) == (
        "Paid £0.42; against no battery saved £1.58"
    )


def test_money_page_before_the_accounting_service_publishes() -> None:
    assert money_view.money_page({})["published"] is False
    assert money_view.today_text({}) is None


def test_plan_comparison_values_the_energy_left_alike() -> None:
    plan = world.comparison(helpers.plan(NOW, hours=30))
    table = money_view.plan_comparison(plan)
    assert table is not None
    rows = {r["key"]: r for r in table["rows"]}
    assert list(rows) == ["plan", "no_battery", "self_use", "seed_rule"]
    assert rows["self_use"]["vs_plan"] == {"text": "saves £0.36", "loss": False}
    assert rows["self_use"]["end_soc_pct"] == 10 and rows["plan"]["end_value"] == "£1.10"
    assert rows["plan"]["vs_plan"] is None
    costs = views.plan_costs(plan)
    assert costs is not None and costs["fair"] and all(not b["vs"]["loss"] for b in costs["baselines"])
    assert "valued" in table["note"]
    # A plan from before the comparison existed: the bare baselines, still in words.
    old = views.plan_costs(helpers.plan(datetime(2024, 1, 15, 12, tzinfo=UTC)))
    assert old is not None and not old["fair"] and old["baselines"][0]["vs"]["text"] == "saves £1.98"
    assert money_view.plan_comparison(helpers.plan(NOW)) is None
