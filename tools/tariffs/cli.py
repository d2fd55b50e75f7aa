"""``batsched compare-tariffs``: its options and its run (household inputs and battery options as ``backtest``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


def add_parser(sub: Any, date_type: Any) -> None:
    from tools.cli import add_battery_args, add_household_args
    from tools.tariffs.catalog import DEFAULT_TARIFFS

    ct = sub.add_parser(
        "compare-tariffs",
        help="which Octopus tariff suits this house? the same planner over the same period on each tariff",
        description="Replay the household's consumption, battery and PV through the planner on each tariff's "
        "historical rates for the region (fetched from Octopus's public API and cached), and write an HTML report "
        "(annual cost with and without the battery, saving, effective p/kWh, a chart) and a CSV. Estimates, not a "
        "bill.",
    )
    g = ct.add_argument_group("tariffs and region")
    g.add_argument(
        "--region",
        default=os.environ.get("BATSCHED_OCTOPUS_REGION", "J"),
        help="Octopus region letter A-P (env BATSCHED_OCTOPUS_REGION; default J)",
    )
    g.add_argument(
        "--tariffs",
        default=",".join(t.name for t in DEFAULT_TARIFFS),
        help="names of the built-in tariffs, or NAME=IMPORT[:EXPORT] product codes, comma-separated",
    )
    g.add_argument(
        "--octopus-url",
        default=os.environ.get("BATSCHED_OCTOPUS_BASE_URL", "https://api.octopus.energy"),
        help="Octopus API base URL (env BATSCHED_OCTOPUS_BASE_URL)",
    )
    g.add_argument("--cache", type=Path, help="where fetched rates are kept (default: ~/.cache/batsched/octopus-rates)")
    add_household_args(ct)
    g = ct.add_argument_group("period (default: the last 365 days of the consumption)")
    g.add_argument("--from", dest="first", type=date_type, help="first local day")
    g.add_argument("--to", dest="last", type=date_type, help="last local day, included")
    add_battery_args(ct)
    g = ct.add_argument_group("output")
    g.add_argument("--out", type=Path, default=Path("tariff-report"), help="directory for the HTML and CSV")
    g.add_argument("--json", action="store_true", help="print the table as JSON for machines")
    g.add_argument("--progress", action="store_true", help="a progress bar on stderr even when it is not a terminal")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm import tqdm

    from shared.slots import LONDON, local_midnight
    from tools.backtest.sources import local_range
    from tools.cli import consumption, model_and_settings, pv_on_axis
    from tools.tariffs.catalog import parse_tariffs
    from tools.tariffs.compare import compare, fetcher, standing_fetcher
    from tools.tariffs.rates import RateCache, default_cache_dir
    from tools.tariffs.report import write_outputs

    started = time.perf_counter()
    tariffs = parse_tariffs(args.tariffs)
    region = args.region.strip().upper()
    start, end = local_range(args.first, args.last)
    names: dict[str, str] = {}
    load = consumption(args, start, end, names, "compare-tariffs")
    if end is None:
        end = local_midnight(load.index[-1].tz_convert("Europe/London").date())
    if start is None:
        start = max(end - timedelta(days=365), local_midnight(load.index[0].tz_convert("Europe/London").date()))
    model, settings = model_and_settings(args)
    cache = RateCache(args.octopus_url, args.cache or default_cache_dir())
    slots = int((end - start).total_seconds() // 1800)
    show = not args.json and not args.no_progress and (args.progress or sys.stderr.isatty())
    bar = tqdm(total=slots * len(tariffs), desc="tariffs", unit="slot", file=sys.stderr, disable=not show)

    def pv(axis: pd.DatetimeIndex) -> Any:
        return pv_on_axis(args, axis, 0, len(axis), names)

    try:
        results = compare(
            tariffs, fetcher(cache, region), load, start, end, pv, model, settings, args.forecasts,
            args.start_soc, args.fill_gaps, bar.update, region, standing_fetcher(cache, region),
        )  # fmt: skip
    finally:
        bar.close()
    names.update(
        {
            "region": region,
            "rates": f"Octopus API ({args.octopus_url}), {cache.fetched} call(s), the rest from the cache",
            "battery": f"{model.capacity_kwh:g} kWh, {model.grid_charge_kw:g} kW grid charge",
            "forecasts": args.forecasts,
        }
    )
    html_path, csv_path = write_outputs(results, args.out, start, end, names)
    elapsed = time.perf_counter() - started
    if args.json:
        doc = {"tariffs": [r.row() for r in results], "files": {"html": str(html_path), "csv": str(csv_path)}}
        print(json.dumps({**doc, "seconds": round(elapsed, 2)}, indent=2))
        return 0
    first, last = (t.astimezone(LONDON) for t in (start, end - timedelta(minutes=1)))
    print(f"batsched compare-tariffs {first:%Y-%m-%d} to {last:%Y-%m-%d} (local days), region {region}")
    print(
        f"  {'tariff':<24} {'no battery':>12} {'with battery':>13} {'saving':>10} {'p/kWh':>7}"
        f" {'standing':>10} {'total':>11}"
    )
    for r in sorted(results, key=lambda r: r.annual_total_battery_gbp):
        print(
            f"  {r.name:<24} £{r.annual_no_battery_gbp:>10,.2f} £{r.annual_battery_gbp:>11,.2f} "
            f"£{r.annual_saving_gbp:>8,.2f} {r.effective_p_per_kwh:>6.2f}p £{r.annual_standing_gbp:>8,.2f}"
            f" £{r.annual_total_battery_gbp:>9,.2f}"
        )
    print(
        "  (annual figures; total = with the battery, standing charges included)\n"
        f"  report: {html_path}\n  CSV: {csv_path}\n  took {elapsed:.1f} s"
    )
    return 0
