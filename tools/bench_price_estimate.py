"""Benchmark the price estimate (``make bench-price-estimate``): walk-forward over the bundled Agile region J history.

For every delivery day from 2022-01-01, the estimate is made as the pricing service makes it right after a
publication: from the history up to 23:00 local (the end of the published prices) only, for the 48 hours after.
Its median is compared with the real prices beside three naive baselines, per season and lead time: the same
slot of the last published day ("yesterday"), the same slot a week before, and the last 7 published days' mean
profile. The band's coverage (the share of real prices inside it; it is meant to hold about 80 %) and width say
whether the uncertainty is honest. MAE in p/kWh. Usage: ``python -m tools.bench_price_estimate``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from services.pricing.estimate import DAY_START, EstimateParams, day_matrix, delivery_positions, estimate
from shared.slots import LONDON, agile_day_bounds
from sim.datasets import agile_prices

SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring"}
SEASONS.update({6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"})
LEADS = ((0, 48, "0-24 h"), (48, 96, "24-48 h"))
COLUMNS = ("yesterday", "week ago", "7-day mean", "estimate")


def walk_forward(first: date, last: date, params: EstimateParams) -> tuple[pd.DataFrame, list[float]]:
    """One row per estimated slot: season, lead index, the truth, each method's value and the band (GBP/kWh)."""
    prices = agile_prices()
    days = day_matrix(prices.index, prices.to_numpy(), LONDON)
    assert days is not None
    rows: list[dict] = []
    seconds: list[float] = []
    history_from = pd.Timestamp(first - timedelta(days=params.window_days + 10), tz="UTC")
    day = first - timedelta(days=1)
    while day < last:
        until = agile_day_bounds(day)[1]  # the end of the prices published at about 16:00 the day before
        hist = prices[history_from : pd.Timestamp(until) - pd.Timedelta(minutes=30)]
        t0 = time.perf_counter()
        est = estimate(hist.index, hist.to_numpy(), until, 48, LONDON, params)
        seconds.append(time.perf_counter() - t0)
        truth = prices.reindex(est.starts).to_numpy() if est is not None else None
        if est is not None and truth is not None and np.isfinite(truth).all():
            a = (day - days.first).days
            out_day, pos = delivery_positions(est.starts, LONDON, DAY_START)
            offs = out_day - (day - date(1970, 1, 1)).days  # 1 = the day after the last published one
            v = days.values
            for k in range(len(truth)):
                p = pos[k]
                rows.append(
                    {
                        "season": SEASONS[(day + timedelta(days=1)).month],
                        "lead": k,
                        "truth": truth[k],
                        "yesterday": v[a, p],
                        "week ago": v[a + offs[k] - 7, p],
                        "7-day mean": np.nanmean(v[a - 6 : a + 1, p]),
                        "estimate": est.median[k],
                        "low": est.low[k],
                        "high": est.high[k],
                    }
                )
        day += timedelta(days=1)
    return pd.DataFrame(rows), seconds


def table(df: pd.DataFrame) -> None:
    for lo, hi, name in LEADS:
        part = df[(df["lead"] >= lo) & (df["lead"] < hi)]
        print(f"\n-- lead {name} after the last published slot: MAE p/kWh (lower is better); the band aims at 80 %")
        print(
            f"{'season':8s} {'days':>5s}" + "".join(f" {c:>11s}" for c in COLUMNS) + f" {'vs best naive':>14s}"
            f" {'coverage':>9s} {'width p':>8s}"
        )
        groups = [(s, part[part["season"] == s]) for s in ("winter", "spring", "summer", "autumn")]
        for season, g in [*groups, ("all", part)]:
            mae = {c: float(np.mean(np.abs(g[c] - g["truth"]))) * 100 for c in COLUMNS}
            best = min(mae[c] for c in COLUMNS[:3])
            inside = float(np.mean((g["truth"] >= g["low"]) & (g["truth"] <= g["high"]))) * 100
            width = float(np.mean(g["high"] - g["low"])) * 100
            print(
                f"{season:8s} {len(g) // (hi - lo):5d}" + "".join(f" {mae[c]:11.2f}" for c in COLUMNS)
                + f" {(mae['estimate'] / best - 1) * 100:+13.1f}% {inside:8.1f}% {width:8.2f}"
            )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--from", dest="first", default="2022-01-01")
    ap.add_argument("--to", dest="last", default="2024-05-13")
    ap.add_argument("--analogs", type=int, default=EstimateParams.analogs)
    ap.add_argument("--window-days", type=int, default=EstimateParams.window_days)
    args = ap.parse_args(argv)
    params = EstimateParams(analogs=args.analogs, window_days=args.window_days)
    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    print(
        f"batsched price estimate benchmark: Agile region J, walk-forward {first} .. {last}, method analog-v1"
        f" ({params.analogs} analogs within {params.window_days} days and the last {params.recent_days} days)"
    )
    df, seconds = walk_forward(first, last, params)
    table(df)
    s = np.array(seconds) * 1e3
    print(f"\ntime per estimate: median {np.median(s):.1f} ms, p99 {np.percentile(s, 99):.1f} ms ({len(s)} estimates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
