"""``make bench-forecast``: walk-forward accuracy of the load forecast on the real gross-load year.

Each local day of the household's gross-load period (2021-10 … 2022-09, before its PV was installed) is
forecast from the observations before that day's local midnight only, by:

- ``persistence``: yesterday (the same slots 24 h earlier);
- ``last-week``: the same weekday last week (the same slots 168 h earlier);
- ``batsched``: ``services.forecast.load_model.forecast_load`` (the service's model).

It prints MAE and RMSE per half-hour and per day (the day's energy), over the whole year and over its second
half alone (the model's two weights were chosen on this year, so the second half is shown separately), and
exits 1 when the model does not beat persistence on daily-energy MAE by at least 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from services.forecast.load_model import LoadModelParams, forecast_load
from shared.slots import local_day_slots
from sim.datasets import gross_load_year

TZ = "Europe/London"
WARM_UP_DAYS = 7  # every method needs last week's day to exist
TARGET_GAIN = 0.10


def walk_forward(series: pd.Series, params: LoadModelParams) -> dict[str, pd.DataFrame]:
    """Per method, a frame of (day, slot, actual, forecast) over every complete local day after the warm-up."""
    local_days = sorted({t.date() for t in series.index.tz_convert(TZ)})
    rows: dict[str, list[tuple]] = {"persistence": [], "last-week": [], "batsched": []}
    for day in local_days[WARM_UP_DAYS + 1 :]:
        slots = pd.DatetimeIndex(local_day_slots(day))
        actual = series.reindex(slots).to_numpy()
        if np.isnan(actual).any():
            continue  # an incomplete day (the end of the period) is not scored
        preds = {
            "persistence": series.reindex(slots - pd.Timedelta(hours=24)).to_numpy(),
            "last-week": series.reindex(slots - pd.Timedelta(days=7)).to_numpy(),
            "batsched": forecast_load(series, slots, now=slots[0], params=params).energy_kwh,
        }
        for name, pred in preds.items():
            rows[name].extend((day, s, a, p) for s, a, p in zip(slots, actual, pred, strict=True))
    return {name: pd.DataFrame(r, columns=["day", "slot", "actual", "forecast"]) for name, r in rows.items()}


def scores(frame: pd.DataFrame) -> dict[str, float]:
    err = (frame["forecast"] - frame["actual"]).dropna()
    daily = frame.groupby("day")[["actual", "forecast"]].sum(min_count=1).dropna()
    derr = daily["forecast"] - daily["actual"]
    return {
        "slot_mae": float(err.abs().mean()),
        "slot_rmse": float(np.sqrt((err**2).mean())),
        "day_mae": float(derr.abs().mean()),
        "day_rmse": float(np.sqrt((derr**2).mean())),
        "days": len(daily),
    }


def report(title: str, results: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    table = {name: scores(frame) for name, frame in results.items()}
    base = table["persistence"]["day_mae"]
    print(f"\n{title}")
    print(f"{'method':<12} {'days':>5} {'MAE/slot kWh':>13} {'RMSE/slot kWh':>14} {'MAE/day kWh':>12} "
          f"{'RMSE/day kWh':>13} {'day MAE vs persistence':>23}")  # fmt: skip
    for name, s in table.items():
        gain = 1 - s["day_mae"] / base
        print(
            f"{name:<12} {s['days']:>5} {s['slot_mae']:>13.4f} {s['slot_rmse']:>14.4f} {s['day_mae']:>12.3f} "
            f"{s['day_rmse']:>13.3f} {gain:>+22.1%}"
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--halflife-days", type=float, default=LoadModelParams.halflife_days)
    parser.add_argument("--weekday-weight", type=float, default=LoadModelParams.weekday_weight)
    args = parser.parse_args(argv)
    # As the service runs it: half-hours above 6 kW (BATSCHED_LOAD_EXCLUDE_ABOVE_KW's default) are left out.
    params = LoadModelParams(
        halflife_days=args.halflife_days, weekday_weight=args.weekday_weight, exclude_above_kwh=3.0
    )

    series = gross_load_year()
    started = time.perf_counter()
    results = walk_forward(series, params)
    elapsed = time.perf_counter() - started
    first, last = series.index[0].tz_convert(TZ).date(), series.index[-1].tz_convert(TZ).date()
    print(f"Load forecast, walk-forward over the real gross-load year {first} … {last} (local days), {params}")
    table = report("Whole year", results)
    days = sorted(results["batsched"]["day"].unique())
    half = days[len(days) // 2]
    report(f"Second half only (from {half})", {n: f[f["day"] >= half] for n, f in results.items()})
    gain = 1 - table["batsched"]["day_mae"] / table["persistence"]["day_mae"]
    verdict = "PASS" if gain >= TARGET_GAIN else "FAIL"
    print(f"\n{verdict}: batsched's daily-energy MAE is {gain:.1%} below persistence (target ≥ {TARGET_GAIN:.0%}); "
          f"{len(days)} days forecast in {elapsed:.1f} s")  # fmt: skip
    return 0 if gain >= TARGET_GAIN else 1


if __name__ == "__main__":
    sys.exit(main())
