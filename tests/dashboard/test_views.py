"""What the pages show, from bus messages to view data (pure functions, a fixed clock)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.dashboard import charts, history, views
from services.dashboard.live import Entry
from services.dashboard.store import Store
from shared.models import SLOT, Action, CurrentRate, ExecutorAlert, OverrideState, Rate, RateSeries
from tests.dashboard import helpers

TZ = ZoneInfo("Europe/London")
NOW = datetime(2024, 1, 15, 12, 10, tzinfo=UTC)


def entries(**docs: object) -> dict[str, Entry]:
    out = {}
    for name, doc in docs.items():
        topic = name.replace("__", "/")
        payload = doc.model_dump_json().encode() if hasattr(doc, "model_dump_json") else str(doc).encode()
        out[topic] = Entry(payload, NOW, True, 1)
    return out


def test_plan_chart_colours_bars_by_action_and_explains_each_slot() -> None:
    plan = helpers.plan(NOW, hours=36, charge_hours=(2, 3))
    e = entries(pricing__import__rates=helpers.rates(NOW), planner__plan=plan)
    fig = charts.plan_figure(e, NOW, TZ)
    bars = fig["figure"]["data"][0]
    green = charts.ACTION_COLOURS["charge"]
    charge_in_view = [s for s in plan.slots if s.action.value == "charge"]
    assert bars["marker"]["color"].count(green) == len(charge_in_view) == fig["charge_slots"]
    i = bars["marker"]["color"].index(green)
    assert "among the cheapest hours before the energy is needed (one of the 6 cheapest" in bars["hovertext"][i]
    soc = fig["figure"]["data"][2]["y"]
    assert max(v for v in soc if v is not None) > 40
    assert fig["costs"]["expected_cost_gbp"] == 1.23
    assert {b["name"] for b in fig["costs"]["baselines"]} == {"No battery", "Seed rule"}


def test_plan_chart_never_draws_a_missing_price_as_zero() -> None:
    series = helpers.rates(NOW)
    holed = RateSeries(
        generated_at=NOW,
        valid_until=series.valid_until,
        tariff_code=series.tariff_code,
        rates=[r for i, r in enumerate(series.rates) if i not in (5, 6)],
    )
    fig = charts.plan_figure(entries(pricing__import__rates=holed, forecast__pv=helpers.forecast(NOW, "pv")), NOW, TZ)
    x, y = fig["figure"]["data"][0]["x"], fig["figure"]["data"][0]["y"]
    holes = [views.local_naive(series.rates[i].start, TZ) for i in (5, 6)]
    assert [y[x.index(h)] for h in holes] == [None, None]  # drawn as gaps
    assert 0 not in y and 0.0 not in y
    assert "price: unknown" in fig["figure"]["data"][0]["hovertext"][x.index(holes[0])]


def test_peak_window_is_shaded_at_local_hours_on_dst_days() -> None:
    for day in (datetime(2024, 3, 31, 0, 5, tzinfo=UTC), datetime(2024, 10, 27, 0, 5, tzinfo=UTC)):
        fig = charts.plan_figure(entries(pricing__import__rates=helpers.rates(day)), day, TZ)
        rects = [s for s in fig["figure"]["layout"]["shapes"] if s["type"] == "rect"]
        assert [r["x0"][11:16] for r in rects] == ["16:00", "16:00"]
        assert [r["x1"][11:16] for r in rects] == ["19:00", "19:00"]


def test_peak_window_follows_the_planner_setting() -> None:
    e = entries(pricing__import__rates=helpers.rates(NOW), planner__peak_start_local="17:30")
    rects = [s for s in charts.plan_figure(e, NOW, TZ)["figure"]["layout"]["shapes"] if s["type"] == "rect"]
    assert rects[0]["x0"].endswith("17:30:00")


def test_freshness_states() -> None:
    e = entries(
        battery__state=helpers.battery(NOW - timedelta(minutes=10), 50),  # valid 5 min: stale
        planner__plan=helpers.plan(NOW),
        forecast__pv="{not json",
    )
    states = {f.name: f.state for f in views.freshness(e, NOW)}
    assert states == {
        "pricing/import/rates": "missing",
        "forecast/pv": "invalid",
        "forecast/load": "missing",
        "battery/state": "stale",
        "planner/plan": "fresh",
    }


def test_now_view_warns_about_stale_and_offline_and_reads_the_price() -> None:
    e = entries(
        battery__state=helpers.battery(NOW - timedelta(minutes=10), 50),
        pricing__import__rates=helpers.rates(NOW),
        executor__status="offline",
        executor__mode="hold",
        executor__dry_run="ON",
    )
    now = views.now_view(e, NOW, TZ, 180, bus_connected=False)
    text = " ".join(now["warnings"])
    assert "lost its connection" in text and "Battery state: stale" in text and "executor is offline" in text
    assert now["battery"]["stale"] is True and now["mode"] == "hold" and now["dry_run"] is True
    expected = helpers.rates(NOW).price_at(datetime(2024, 1, 15, 12, 0, tzinfo=UTC))
    assert now["price"]["p_per_kwh"] == round(expected * 100, 2)
    assert now["price"]["tariff"] == "Agile Octopus"  # named from the prices' tariff code


def test_now_view_names_the_tariff_of_the_price_now() -> None:
    series = helpers.rates(NOW)
    current = CurrentRate(
        generated_at=NOW,
        valid_until=NOW + SLOT,
        tariff_code="E-1R-INTELLI-VAR-22-10-14-J",
        slot_start=datetime(2024, 1, 15, 12, 0, tzinfo=UTC),
        slot_end=datetime(2024, 1, 15, 12, 30, tzinfo=UTC),
        known=True,
        value_inc_vat=0.07,
    )
    now = views.now_view(entries(pricing__import__rates=series, pricing__import__current=current), NOW, TZ, 180, True)
    assert now["price"]["p_per_kwh"] == 7.0 and now["price"]["tariff"] == "Intelligent Octopus Go"


def test_now_view_shows_unknown_price_not_zero() -> None:
    series = helpers.rates(NOW)
    current_start = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    holed = RateSeries(
        generated_at=NOW,
        valid_until=series.valid_until,
        tariff_code=series.tariff_code,
        rates=[r for r in series.rates if r.start != current_start],
    )
    now = views.now_view(entries(pricing__import__rates=holed), NOW, TZ, 180, True)
    assert now["price"]["known"] is False and now["price"]["p_per_kwh"] is None


def test_the_executors_alert_is_a_warning_on_every_page_until_it_clears() -> None:
    refused = ExecutorAlert(generated_at=NOW, code="netzero_refused", message="NetZero refused the API token")
    now = views.now_view(entries(executor__alert=refused), NOW, TZ, 180, True)
    assert "Battery control: NetZero refused the API token" in now["warnings"]
    ok = ExecutorAlert(generated_at=NOW, code="ok", message="nothing keeps the executor from its job")
    assert not any(
        "Battery control" in w for w in views.now_view(entries(executor__alert=ok), NOW, TZ, 180, True)["warnings"]
    )


def test_daily_summary_reads_as_sentences_and_never_as_a_negative_saving() -> None:
    doc = (
        '{"generated_at":"2024-01-15T00:05:00Z","date":"2024-01-14","actual_cost_gbp":1.5,'
        '"no_battery_cost_gbp":2.75,"month":{"actual_cost_gbp":20.1,"days":14,"saved_vs_no_battery_gbp":-0.4},'
        '"since_install":{"actual_cost_gbp":400.0,"days":300,"saved_vs_no_battery_gbp":151.2}}'
    )
    s = views.now_view(entries(executor__daily_summary=doc), NOW, TZ, 180, True)["daily_summary"]
    text = " ".join(s["lines"])
    assert s["date"] == "2024-01-14"
    assert "Sun 14 Jan: electricity cost £1.50" in text
    assert "Without a battery it would have been £2.75: the battery saved £1.25." in text
    assert "This month: £20.10 over 14 days; against no battery the battery cost £0.40 more." in text
    assert "Since install" in text and "saved £151.20" in text
    assert "£-" not in text and "first date" not in text and "days compared" not in text


def test_history_rows_and_csv_show_commanded_vs_observed(tmp_path: Path) -> None:
    store = Store(tmp_path / "dashboard.db")
    store.record_decision(helpers.decision(NOW, "d-1"))
    store.record_decision(helpers.decision(NOW, "d-1"))  # redelivered: kept once
    store.record_decision(helpers.decision(NOW - timedelta(days=1), "d-0"))
    start, end = history.day_range(date(2024, 1, 15), TZ)
    rows = history.decision_rows(store.decisions_between(start, end), TZ)
    assert [r["decision_id"] for r in rows] == ["d-1"]
    assert rows[0]["match"] is False and "grid charge on" in rows[0]["commanded"]
    table = list(csv.DictReader(io.StringIO(history.decisions_csv(rows))))
    assert table[0]["outcome"] == "mismatch" and table[0]["observed"].endswith("grid charge off")
    store.close()
    reopened = Store(tmp_path / "dashboard.db")  # history survives a restart
    assert len(reopened.decisions_between(start - timedelta(days=1), end)) == 2


def test_store_keeps_prices_and_soc_for_charts(tmp_path: Path) -> None:
    store = Store(tmp_path / "dashboard.db")
    store.record_rates(helpers.rates(NOW))
    store.record_battery(helpers.battery(NOW, 61.0))
    fig = charts.history_figure(
        store.battery_between(NOW - timedelta(days=1), NOW + SLOT),
        store.prices_between(NOW - timedelta(days=1), NOW + SLOT),
        TZ,
    )
    soc, price = fig["data"][0], fig["data"][1]
    assert soc["y"] == [61.0] and len(price["y"]) == 3 + 1  # three slots, and the last one's end
    store.prune(NOW + timedelta(days=3))
    assert store.prices_between(NOW - timedelta(days=1), NOW + timedelta(days=3)) == []


def test_rate_fixture_is_sane() -> None:
    r = helpers.rates(NOW).rates[0]
    assert isinstance(r, Rate) and r.end - r.start == SLOT


def test_daily_summary_allows_for_the_energy_left_in_the_battery() -> None:
    """A day that ended with less stored than it began with is not credited for draining the battery."""
    doc = (
        '{"generated_at":"2024-01-15T00:05:00Z","date":"2024-01-14","actual_cost_gbp":1.5,'
        '"no_battery_cost_gbp":2.75,"stored_change_value_gbp":-0.2}'
    )
    lines = views.now_view(entries(executor__daily_summary=doc), NOW, TZ, 180, True)["daily_summary"]["lines"]
    assert (
        lines[1]
        == "Without a battery it would have been £2.75: the battery saved £1.05, allowing for the energy left in it."
    )


def test_the_override_in_force_is_said_on_the_system_clock_and_in_the_headline() -> None:
    """Summer in London (UTC+1): an override to 04:30 UTC reads 05:30, 24-hour, on the Control page and on top of
    the Now page; one past its end or cancelled reads as none, before the executor has said anything as unknown."""
    now = datetime(2024, 7, 15, 1, 10, tzinfo=UTC)  # 02:10 in London
    charge = OverrideState(generated_at=now, action="charge", until=datetime(2024, 7, 15, 4, 30, tzinfo=UTC),
                           target_soc_pct=90, request_id="r-1", summary="Charge until 05:30 (to 90 %)")  # fmt: skip
    doc = views.now_view(entries(executor__override=charge, executor__mode="auto"), now, TZ, 180, True)
    assert doc["override"] == {"in_force": True, "action": "charge", "text": "In force: charge until 05:30 (to 90 %)"}
    assert doc["headline"] == "Charging until 05:30 to 90 %, because you set an override."
    # Mode off still stands aside whatever the override asks (as the executor decides).
    off = views.now_view(entries(executor__override=charge, executor__mode="off"), now, TZ, 180, True)
    assert off["headline"].startswith("batsched is switched off")
    # Ending tomorrow: the day is named.
    hold = charge.model_copy(update={"action": Action.HOLD, "until": datetime(2024, 7, 16, 0, 30, tzinfo=UTC)})
    doc = views.now_view(entries(executor__override=hold, battery__state=helpers.battery(now, 64)), now, TZ, 180, True)
    assert doc["override"]["text"] == "In force: hold until Tue 01:30 (to 90 %)"
    assert doc["headline"] == "Holding at 64 % until Tue 01:30, because you set an override."
    # Over (its end passed before the executor's next word), cancelled, or not said yet.
    later = datetime(2024, 7, 15, 4, 30, tzinfo=UTC)
    assert views.override_view(entries(executor__override=charge), later, TZ)["text"] == "None in force"
    none = OverrideState(generated_at=now)
    assert views.override_view(entries(executor__override=none), now, TZ) == {
        "in_force": False, "action": None, "text": "None in force"}  # fmt: skip
    assert views.override_view(entries(), now, TZ)["text"].startswith("Not known yet")
