"""Slots the plan does not choose: manual windows, Octopus Saving Sessions and free-electricity sessions.

The planner plans *around* them: each such slot gets a fixed move in the DP (``dp_kernel.FREE`` … ``NO_GRID``),
so the slots before it prepare for it and the ones after it start from where it leaves the battery. The moves
mirror what the executor will do there, safety rules included:

- a Saving Session: self-use only (nothing is grid-charged or held, whatever else asks), and each kWh bought in it
  also costs its reward (OctoPoints/kWh, in GBP): so the battery goes in as full as is worth it;
- a manual window: ``hold``, or ``charge`` towards its target; where a safety rule forbids the charge (peak, price
  above the limit or unknown) the executor falls back to self-use, and so does the plan;
- a free-electricity session: import costs nothing; charge to full (unless a safety rule forbids it).
A window beats a free session; a Saving Session beats both (the executor's ``saving_session`` rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from services.planner.battery import BatteryModel
from services.planner.dp_kernel import FIXED_CHARGE, FIXED_HOLD, FREE, NO_GRID
from shared.models import SLOT, ManualWindow, OctopusSession, Reason, SessionList, WindowList


@dataclass(frozen=True)
class Fixed:
    mode: np.ndarray  # int8 per slot
    cap_kwh: np.ndarray  # where a FIXED_CHARGE slot stops
    price_adjust: np.ndarray  # GBP/kWh added to the import price the DP weighs (a session's reward; minus a free one)
    money_price_zero: np.ndarray  # bool: import is free in this slot (for the plan's reported cost)
    reasons: list[tuple[Reason, str] | None]  # why, per slot (None = chosen by the plan)

    @property
    def any(self) -> bool:
        return bool(np.any(self.mode != FREE)) or bool(np.any(self.price_adjust))


def _at(items: list, start: datetime) -> object | None:
    end = start + SLOT
    return next((x for x in items if x.start < end and start < x.end), None)


def fixed_slots(
    starts: list[datetime],
    charge_ok: np.ndarray,
    model: BatteryModel,
    now: datetime,
    windows: WindowList | None = None,
    sessions: SessionList | None = None,
) -> Fixed:
    n = len(starts)
    mode = np.zeros(n, np.int8)
    cap = np.zeros(n)
    adjust = np.zeros(n)
    free_money = np.zeros(n, dtype=bool)
    reasons: list[tuple[Reason, str] | None] = [None] * n
    pending = [w for w in (windows.windows if windows else []) if w.end > now]
    known = list(sessions.sessions) if sessions is not None else []
    saving = [s for s in known if s.kind == "saving" and s.end > now]
    free = [s for s in known if s.kind == "free" and s.end > now]
    full = model.capacity_kwh
    for k, start in enumerate(starts):
        s = _at(saving, start)
        if isinstance(s, OctopusSession):
            reward = s.reward_gbp_per_kwh or 0.0
            mode[k], adjust[k] = NO_GRID, reward
            reasons[k] = (Reason.SAVING_SESSION, f"Octopus Saving Session {s.code}: the battery covers the house, "
                          f"nothing bought (reward {reward * 100:.0f}p/kWh)")  # fmt: skip
            continue
        w = _at(pending, start)
        if isinstance(w, ManualWindow):
            if w.action == "hold":
                mode[k] = FIXED_HOLD
                reasons[k] = (Reason.MANUAL_WINDOW, f"manual window {w.window_id}: hold")
            elif charge_ok[k]:
                target = w.target_soc_pct if w.target_soc_pct is not None else 100.0
                mode[k], cap[k] = FIXED_CHARGE, full * target / 100.0
                reasons[k] = (Reason.MANUAL_WINDOW, f"manual window {w.window_id}: charge to {target:g}%")
            else:
                mode[k] = NO_GRID
                reasons[k] = (Reason.MANUAL_WINDOW, f"manual window {w.window_id}: charge blocked by a safety rule "
                              "(peak, price limit or unknown price): self-use")  # fmt: skip
            continue
        f = _at(free, start)
        if isinstance(f, OctopusSession):
            free_money[k] = True
            if charge_ok[k]:
                mode[k], cap[k] = FIXED_CHARGE, full
                reasons[k] = (Reason.FREE_SESSION, f"Octopus free-electricity session {f.code}: charge to full")
            else:  # the executor's charge is blocked: it falls back to self-use, and so does the plan
                mode[k] = NO_GRID
                reasons[k] = (Reason.FREE_SESSION, f"Octopus free-electricity session {f.code} (no grid charging: "
                              "a safety rule forbids it): self-use")  # fmt: skip
    return Fixed(mode, cap, adjust, free_money, reasons)
