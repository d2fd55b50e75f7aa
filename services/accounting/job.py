"""The accounting job: keeps what it sees on the bus and closes each local day after midnight (injected clock).

It runs as its own process beside the executor rather than inside it: the executor is the safety-critical
NetZero writer and stays small; accounting only reads the bus (``battery/state``, rates, plans), so it can be
restarted, upgraded or replayed without touching the battery, and a bug in it can never block a decision.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.accounting.config import AccountingSettings
from services.accounting.daily import BatteryParams, DayAccount, Sample, StoredValue, account_day
from services.accounting.money import money_summary
from services.accounting.store import AccountingStore, keep_from
from shared.bus import Bus
from shared.clock import Clock
from shared.models import BatteryState, CostTotals, DailySummary, MoneySummary, Plan, RateSeries
from shared.slots import local_date, local_day_bounds, local_midnight
from shared.topics import EXECUTOR_DAILY_SUMMARY


def _net(cost: float | None, stored: float | None) -> float | None:
    """A cost net of the value of its stored change (the cost itself on a day without a valued SOC)."""
    return None if cost is None else cost - (stored or 0.0)


def totals(summaries: list[DailySummary]) -> CostTotals | None:
    """Add up daily summaries; counterfactuals only over days where both they and the actual are known. Savings
    compare costs net of the value of each side's stored change (``money.py``), as ``accounting/money`` does."""
    if not summaries:
        return None
    compared = [s for s in summaries if s.no_battery_cost_gbp is not None]
    with_self_use = [s for s in summaries if s.self_use_cost_gbp is not None]
    actual = {s.date: _net(s.actual_cost_gbp, s.stored_change_value_gbp) or 0.0 for s in summaries}
    planned = [s for s in summaries if s.planned_cost_gbp is not None]
    return CostTotals(
        first_date=summaries[0].date,
        last_date=summaries[-1].date,
        days=len(summaries),
        days_compared=len(compared),
        actual_cost_gbp=round(sum(s.actual_cost_gbp for s in summaries), 4),
        planned_cost_gbp=round(sum(s.planned_cost_gbp or 0.0 for s in planned), 4) if planned else None,
        no_battery_cost_gbp=round(sum(s.no_battery_cost_gbp or 0.0 for s in compared), 4) if compared else None,
        self_use_cost_gbp=round(sum(s.self_use_cost_gbp or 0.0 for s in with_self_use), 4) if with_self_use else None,
        saved_vs_no_battery_gbp=(
            round(sum((s.no_battery_cost_gbp or 0.0) - actual[s.date] for s in compared), 4) if compared else None
        ),
        saved_vs_self_use_gbp=(
            round(
                sum(
                    (_net(s.self_use_cost_gbp, s.self_use_stored_change_value_gbp) or 0.0) - actual[s.date]
                    for s in with_self_use
                ),
                4,
            )
            if with_self_use
            else None
        ),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class AccountingJob:
    def __init__(self, bus: Bus, clock: Clock, store: AccountingStore, settings: AccountingSettings, log: Any) -> None:
        self.bus = bus
        self.clock = clock
        self.store = store
        self.settings = settings
        self.log = log
        self.tz = settings.tz
        self.settle = timedelta(seconds=settings.accounting_settle_s)
        self.max_hold = timedelta(seconds=settings.accounting_max_hold_s)
        self.battery = BatteryParams(settings.battery_capacity_kwh, settings.battery_reserve_pct)
        self._empty_days: set[date] = set()  # days already reported as having no observations

    # ---------------------------------------------------------------- bus handlers

    def on_state(self, state: BatteryState | None) -> None:
        if state is None:
            return
        self.store.add_sample(
            Sample(
                at=state.observed_at,
                grid_w=state.grid_power_w,
                load_w=state.load_power_w,
                pv_w=state.solar_power_w,
                soc_pct=state.soc_pct,
                capacity_kwh=state.capacity_kwh,
            )
        )

    def on_import_rates(self, series: RateSeries | None) -> None:
        self._rates("import", series)

    def on_export_rates(self, series: RateSeries | None) -> None:
        self._rates("export", series)

    def _rates(self, direction: str, series: RateSeries | None) -> None:
        if series is None:
            return
        n = self.store.add_rates(direction, ((r.start, r.value_inc_vat) for r in series.rates))
        self.log.debug("rates stored", direction=direction, slots=n)

    def on_plan(self, plan: Plan | None) -> None:
        if plan is None:
            return
        self.store.add_plan(plan.plan_id, plan.generated_at, ((s.start, s.cost_gbp) for s in plan.slots))
        if plan.end_value_gbp_per_kwh is not None:
            self.store.add_plan_value(plan.plan_id, plan.generated_at, plan.end_value_gbp_per_kwh)

    def republish(self) -> None:
        """After a (re)connect: put the latest summary back as retained state (a restarted broker may lose it)."""
        latest = self.store.latest_summary()
        if latest is not None:
            self.bus.publish(EXECUTOR_DAILY_SUMMARY, latest)
        self.publish_money()

    # ---------------------------------------------------------------- accounting/money

    def publish_money(self) -> MoneySummary:
        """Today so far, each day, month and since install (retained ``accounting/money``)."""
        now = self.clock.now()
        today = local_date(now, self.tz)
        account = self._account(today, now)
        partial = self._summary(account, now) if account is not None else None
        money = money_summary(self.store.summaries(last=today - timedelta(days=1)), partial, now.astimezone(UTC))
        self.bus.publish_state(self.bus.topics.accounting_money, money)
        return money

    # ---------------------------------------------------------------- closing days

    def seconds_to_next_close(self) -> float:
        now = self.clock.now()
        next_midnight = local_midnight(local_date(now - self.settle, self.tz) + timedelta(days=1), self.tz)
        return max(1.0, (next_midnight + self.settle - now).total_seconds())

    def close_finished_days(self) -> list[DailySummary]:
        """Summarise every finished local day that has observations and no summary yet (oldest first)."""
        now = self.clock.now()
        last_finished = local_date(now - self.settle, self.tz) - timedelta(days=1)
        first_seen = self.store.first_sample_at()
        if first_seen is None:
            return []
        oldest = max(local_date(first_seen, self.tz), local_date(now, self.tz) - timedelta(days=self.keep_days))
        done = self.store.summary_days()
        published = []
        day = oldest
        while day <= last_finished:
            if day not in done:
                summary = self.close_day(day, now)
                if summary is not None:
                    published.append(summary)
            day += timedelta(days=1)
        self.store.prune(keep_from(now, self.keep_days))
        self.publish_money()
        return published

    @property
    def keep_days(self) -> int:
        return self.settings.accounting_keep_days

    def _account(self, day: date, now: datetime) -> DayAccount | None:
        """The day's account from what is stored (up to ``now`` for today); None without observations."""
        start, end = local_day_bounds(day, self.tz)
        end = min(end, now)
        samples = self.store.samples(start - self.max_hold, end)
        if not any(start <= s.at < end for s in samples):
            return None
        value = self.store.plan_value(start, end)
        return account_day(
            day,
            samples,
            self.store.prices("import", start, end),
            self.store.prices("export", start, end) or None,
            self.store.planned(start, end),
            self.battery,
            self.tz,
            self.max_hold,
            plan_value=None if value is None else StoredValue(value, "plan"),
        )

    def close_day(self, day: date, now: datetime) -> DailySummary | None:
        account = self._account(day, now)
        if account is None:
            if day not in self._empty_days:
                self._empty_days.add(day)
                self.log.info("no observations for the day; no summary", day=day.isoformat())
            return None
        summary = self._summary(account, now)
        self.store.save_summary(summary)
        history = self.store.summaries(last=day)
        month = [s for s in history if (s.date.year, s.date.month) == (day.year, day.month)]
        summary = summary.model_copy(update={"month": totals(month), "since_install": totals(history)})
        self.store.save_summary(summary)
        self.bus.publish_state(self.bus.topics.executor_daily_summary, summary)
        self.log.info(
            "day closed",
            day=day.isoformat(),
            actual_gbp=summary.actual_cost_gbp,
            no_battery_gbp=summary.no_battery_cost_gbp,
            slots_observed=account.slots_observed,
            slots_expected=account.slots_expected,
            slots_unpriced=account.slots_unpriced,
        )
        if account.slots_unpriced:
            self.log.warning(
                "slots without a known price were left out", day=day.isoformat(), slots=account.slots_unpriced
            )
        return summary

    def _summary(self, a: DayAccount, now: datetime) -> DailySummary:
        return DailySummary(
            generated_at=now.astimezone(UTC),
            date=a.day,
            actual_cost_gbp=round(a.actual_cost_gbp, 4),
            planned_cost_gbp=_round(a.planned_cost_gbp),
            no_battery_cost_gbp=_round(a.no_battery_cost_gbp),
            self_use_cost_gbp=_round(a.self_use_cost_gbp),
            grid_import_kwh=round(a.grid_import_kwh, 4),
            grid_export_kwh=round(a.grid_export_kwh, 4),
            slots_observed=a.slots_observed,
            slots_expected=a.slots_expected,
            slots_unpriced=a.slots_unpriced,
            slots_planned=a.slots_planned,
            soc_start_pct=a.soc_start_pct,
            soc_end_pct=a.soc_end_pct,
            stored_value_gbp_per_kwh=_round(a.stored_value.gbp_per_kwh) if a.stored_value else None,
            stored_value_source=a.stored_value.source if a.stored_value else None,  # type: ignore[arg-type]
            stored_change_value_gbp=_round(a.stored_change_value_gbp),
            self_use_end_soc_pct=None if a.self_use_end_soc_pct is None else round(a.self_use_end_soc_pct, 2),
            self_use_stored_change_value_gbp=_round(a.self_use_stored_change_value_gbp),
        )
