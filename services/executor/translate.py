"""From a plan action to the NetZero configuration that produces it (docs/architecture.md, "The Powerwall").

- ``charge``: backup mode + ``grid_charging`` (~3.3 kW to 100 %), or self-consumption with the reserve raised to
  the target (~1.8 kW, stops at the target by itself);
- ``hold``: backup mode without grid charging (the battery keeps its charge, the house runs from the grid);
- ``self_use``: the user's own configuration (the baseline).

Only the fields that differ from what was observed are sent, in one POST.
"""

from __future__ import annotations

import math
from typing import Literal

from shared.models import Action, PowerwallConfig

FIELDS = ("operational_mode", "backup_reserve_pct", "grid_charging", "energy_exports")


COERCED_RESERVES = range(81, 100)  # a backup reserve Tesla stores as 80 % (NetZero accepts it silently)


def coerced_reserve(pct: int) -> bool:
    """Tesla would not keep this reserve as sent: the one definition of the 81–99 % rule (the decision's bounds
    check and the NetZero client's last refusal ask this)."""
    return pct in COERCED_RESERVES


def safe_reserve(pct: float) -> int:
    """A reserve Tesla keeps as sent: 81–99 % would be coerced to 80 %, so send 80 (the lower, cheaper choice)."""
    value = max(0, min(100, math.ceil(pct)))
    return 80 if coerced_reserve(value) else value


def sanitize_baseline(
    observed: PowerwallConfig,
    mode: Literal["autonomous", "self_consumption"] | None = None,
    reserve_pct: int | None = None,
) -> PowerwallConfig:
    """The user's normal configuration, as captured when we first take control. Never a charging state: backup
    mode becomes self-consumption and grid charging is off, whatever was found."""
    found_mode = observed.operational_mode
    base_mode = mode or (found_mode if found_mode in ("autonomous", "self_consumption") else "self_consumption")
    reserve = reserve_pct if reserve_pct is not None else observed.backup_reserve_pct
    return PowerwallConfig(
        operational_mode=base_mode,
        backup_reserve_pct=safe_reserve(reserve if reserve is not None else 20),
        grid_charging=False,
        energy_exports=observed.energy_exports,
    )


def desired_config(
    action: Action,
    baseline: PowerwallConfig,
    target_soc_pct: float | None = None,
    method: Literal["backup", "reserve"] = "backup",
) -> PowerwallConfig:
    """The configuration for ``action``; fields left ``None`` are not ours to change."""
    if action == Action.CHARGE:
        if method == "reserve":
            return PowerwallConfig(
                operational_mode="self_consumption",
                backup_reserve_pct=safe_reserve(target_soc_pct if target_soc_pct is not None else 100),
                grid_charging=False,
            )
        return PowerwallConfig(operational_mode="backup", grid_charging=True)
    if action == Action.HOLD:
        return PowerwallConfig(operational_mode="backup", grid_charging=False)
    return PowerwallConfig(
        operational_mode=baseline.operational_mode,
        backup_reserve_pct=baseline.backup_reserve_pct,
        grid_charging=False,
        energy_exports=baseline.energy_exports,
    )


def diff(desired: PowerwallConfig, observed: PowerwallConfig | None) -> PowerwallConfig | None:
    """The fields of ``desired`` that ``observed`` does not already have; None when nothing differs."""
    changes = {}
    for name in FIELDS:
        want = getattr(desired, name)
        if want is not None and (observed is None or getattr(observed, name) != want):
            changes[name] = want
    return PowerwallConfig(**changes) if changes else None


def matches(desired: PowerwallConfig, observed: PowerwallConfig | None) -> bool:
    return diff(desired, observed) is None


def may_grid_charge(config: PowerwallConfig, soc_pct: float) -> bool:
    """Whether a configuration can pull charge from the grid: backup with grid charging, or a reserve above SOC."""
    if config.grid_charging and config.operational_mode in ("backup", "autonomous", None):
        return True
    return config.backup_reserve_pct is not None and config.backup_reserve_pct > soc_pct


def is_forced(observed: PowerwallConfig, baseline: PowerwallConfig) -> bool:
    """A configuration that is one of ours rather than the user's normal one."""
    if observed.grid_charging:
        return True
    if observed.operational_mode == "backup" and baseline.operational_mode != "backup":
        return True
    return (
        observed.backup_reserve_pct is not None
        and baseline.backup_reserve_pct is not None
        and observed.backup_reserve_pct > baseline.backup_reserve_pct
    )
