"""The accounting job: keeps what it sees on the bus and closes each local day after midnight (injected clock).

It runs as its own process beside the executor rather than inside it: the executor is the safety-critical
NetZero writer and stays small; accounting only reads the bus (``battery/state``, rates, plans), so it can be
restarted, upgraded or replayed without touching the battery, and a bug in it can never block a decision.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.accounting.config import AccountingSettings
from services.accounting.daily import BatteryParams, DayAccount, Sample, account_day
from services.accounting.store import AccountingStore, keep_from
from shared.bus import Bus
from shared.clock import Clock
from shared.models import BatteryState, CostTotals, DailySummary, Plan, RateSeries
from shared.slots import local_date, local_day_bounds, local_midnight
from shared.topics import EXECUTOR_DAILY_SUMMARY


def totals(summaries: list[DailySummary]) -> CostTotals | None:
    """Add up daily summaries; counterfactuals only over days where both they and the actual are known."""
    if not summaries:
        return None
    compared = [s for s in summaries if s.no_battery_cost_gbp is not None]
    with_self_use = [s for s in summaries if s.self_use_cost_gbp is not None]
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
            round(sum((s.no_battery_cost_gbp or 0.0) - s.actual_cost_gbp for s in compared), 4) if compared else None
        ),
        saved_vs_self_use_gbp=(
            round(sum((s.self_use_cost_gbp or 0.0) - s.actual_cost_gbp for s in with_self_use), 4)
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

    def republish(self) -> None:
        """After a (re)connect: put the latest summary back as retained state (a restarted broker may lose it)."""
        latest = self.store.latest_summary()
        if latest is not None:
            self.bus.publish(EXECUTOR_DAILY_SUMMARY, latest)

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
        return published

    @property
    def keep_days(self) -> int:
        return self.settings.accounting_keep_days

    def close_day(self, day: date, now: datetime) -> DailySummary | None:
        start, end = local_day_bounds(day, self.tz)
        samples = self.store.samples(start - self.max_hold, end)
        if not any(start <= s.at < end for s in samples):
            if day not in self._empty_days:
                self._empty_days.add(day)
                self.log.info("no observations for the day; no summary", day=day.isoformat())
            return None
        account = account_day(
            day,
            samples,
            self.store.prices("import", start, end),
            self.store.prices("export", start, end) or None,
            self.store.planned(start, end),
            self.battery,
            self.tz,
            self.max_hold,
        )
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
        )
