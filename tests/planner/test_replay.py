"""The replay's price visibility and its money accounting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.planner.battery import BatteryModel, limits_for
from services.planner.replay import Batsched, World, peak_mask, published_end, replay, self_use_policy
from shared.models import PlannerSettings


def _axis(first: str, days: int) -> pd.DatetimeIndex:
    start = pd.Timestamp(first, tz="Europe/London").tz_convert("UTC")
    return pd.date_range(start, periods=48 * days, freq="30min")


def test_prices_are_visible_only_as_octopus_publishes_them() -> None:
    slots = _axis("2023-03-24", 4)  # spans the spring clock change (26 March)
    end = published_end(slots)
    local = slots.tz_convert("Europe/London")
    for i in range(len(slots)):
        last_visible = slots[end[i] - 1].tz_convert("Europe/London") if end[i] < len(slots) else None
        if last_visible is None:
            continue
        assert last_visible.strftime("%H:%M") == "22:30"  # prices run to 23:00 local
        days_ahead = (last_visible.date() - local[i].date()).days
        assert days_ahead == (1 if local[i].hour >= 16 else 0)


def test_peak_mask_is_local_time_across_dst() -> None:
    slots = _axis("2023-10-28", 3)
    mask = peak_mask(slots, PlannerSettings())
    local = slots.tz_convert("Europe/London")[mask]
    assert set(local.strftime("%H:%M")) == {"16:00", "16:30", "17:00", "17:30", "18:00", "18:30"}
    assert mask.sum() == 18


def test_batsched_beats_self_use_on_a_cheap_night_dear_evening_week() -> None:
    slots = _axis("2023-01-02", 10)
    local = slots.tz_convert("Europe/London")
    price = np.where(local.hour < 6, 0.08, np.where((local.hour >= 16) & (local.hour < 19), 0.45, 0.28))
    n = len(slots)
    world = World(slots, price.astype(float), np.full(n, 0.15), np.full(n, 0.4), np.zeros(n), 48 * 3, n - 48)
    m, s = BatteryModel(), PlannerSettings(max_charge_price_gbp=0.5)
    lim = limits_for(m, s)
    su = replay(world, self_use_policy, m, lim, lim.min_kwh)
    bs = replay(world, Batsched(world, m, s, "own"), m, lim, lim.min_kwh)
    assert bs.cost_gbp < su.cost_gbp * 0.8
    assert bs.charge_slots > 0 and len(bs.plan_seconds) == world.stop - world.start
