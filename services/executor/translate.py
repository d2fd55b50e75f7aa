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


def user_baseline(
    observed: PowerwallConfig,
    mode: Literal["autonomous", "self_consumption"] | None = None,
    reserve_pct: int | None = None,
) -> PowerwallConfig:
    """The user's own configuration, exactly as found when nothing of ours is on the Powerwall (any reserve,
    backup mode, grid charging on): what ``self_use`` hands back. The settings ``BATSCHED_BASELINE_MODE`` /
    ``_RESERVE_PCT`` replace a field when the user set them. A reserve NetZero cannot restore (81–99 %) is kept
    as it is: the ``baseline`` rule then forces nothing unless the user accepted 80 % back."""
    return PowerwallConfig(
        operational_mode=mode or observed.operational_mode,
        backup_reserve_pct=reserve_pct if reserve_pct is not None else observed.backup_reserve_pct,
        grid_charging=observed.grid_charging,
        energy_exports=observed.energy_exports,
    )


def restore_config(baseline: PowerwallConfig, found: PowerwallConfig | None = None) -> PowerwallConfig:
    """The whole baseline as it can be sent (the watchdog's and the exit's restore): a reserve of 81–99 % (only
    forced on when the user accepted 80 % back) is left out while ``found`` still has it, else sent as 80 %."""
    sendable = desired_config(Action.SELF_USE, baseline)
    reserve = sendable.backup_reserve_pct
    if reserve is None or not coerced_reserve(reserve):
        return sendable
    keep = found is not None and found.backup_reserve_pct == reserve
    return sendable.model_copy(update={"backup_reserve_pct": None if keep else safe_reserve(reserve)})


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
        grid_charging=bool(baseline.grid_charging),
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
    """A configuration that could be one of ours rather than the user's normal one: grid charging or backup mode
    the user does not have, or a reserve above theirs."""
    if observed.grid_charging and not baseline.grid_charging:
        return True
    if observed.operational_mode == "backup" and baseline.operational_mode != "backup":
        return True
    return (
        observed.backup_reserve_pct is not None
        and baseline.backup_reserve_pct is not None
        and observed.backup_reserve_pct > baseline.backup_reserve_pct
    )
