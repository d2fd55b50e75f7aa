"""The ``batsched`` command.

- ``batsched backtest``: what would batsched have saved on your own data?
- ``batsched compare-tariffs``: which Octopus tariff suits this house (``tools/tariffs``)?
- ``batsched config``: every effective setting, its value and where it came from (``--json``, ``--env FILE``);
- ``batsched migrate-seed``: move over from the original app (its ``.env`` and ``Force_Charging.db``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _window(text: str) -> tuple[str, str]:
    try:
        start, end = text.split("-")
        return start.strip(), end.strip()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM-HH:MM, got {text!r}") from None


def add_household_args(parser: argparse.ArgumentParser) -> None:
    """The consumption and solar options of ``backtest`` and ``compare-tariffs``."""
    g = parser.add_argument_group("consumption (default: the bundled real household, before it had PV)")
    g.add_argument("--consumption", type=Path, help="the half-hourly CSV Octopus lets you download, or API JSON")
    g.add_argument("--octopus-api-key", default=os.environ.get("BATSCHED_OCTOPUS_API_KEY"), help="for the API")
    g.add_argument("--mpan", help="meter point (with --octopus-api-key)")
    g.add_argument("--serial", help="meter serial number (with --octopus-api-key)")
    g = parser.add_argument_group("solar (default: none)")
    g.add_argument("--pv-kwp", type=float, default=0.0, help="scale the bundled PVGIS profile to this many kWp")
    g.add_argument("--pv", type=Path, help="half-hourly PV CSV (start, pv_kwh) instead of the profile")
    g.add_argument(
        "--fill-gaps",
        type=int,
        default=0,
        metavar="N",
        help="fill up to N half-hours of consumption missing in the period with its mean (listed in the report)",
    )


def add_battery_args(parser: argparse.ArgumentParser) -> None:
    """The battery and planner options of ``backtest`` and ``compare-tariffs``."""
    g = parser.add_argument_group("battery and planner settings (defaults: the planner's)")
    g.add_argument("--capacity-kwh", type=float)
    g.add_argument("--grid-charge-kw", type=float)
    g.add_argument("--charge-kw", type=float)
    g.add_argument("--discharge-kw", type=float)
    g.add_argument("--eta-charge", type=float)
    g.add_argument("--eta-discharge", type=float)
    g.add_argument("--export-price", type=float, help="GBP/kWh earned per exported kWh")
    g.add_argument("--min-soc", type=float, help="reserve, %%")
    g.add_argument("--max-charge-price", type=float, help="never grid-charge above this, GBP/kWh")
    g.add_argument("--target-soc-cap", type=float, help="grid charging stops here, %%")
    g.add_argument("--peak", type=_window, help="no grid charging in this local window, e.g. 16:00-19:00")
    g.add_argument("--start-soc", type=float, help="SOC at the start, %% (default: the reserve)")
    g.add_argument(
        "--forecasts",
        choices=("perfect", "own"),
        default="perfect",
        help="load/PV the planner sees: the real ones (perfect) or its own same-time-of-day forecast",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batsched", description="batsched: home-battery scheduler tools")
    sub = parser.add_subparsers(dest="command", required=True)
    bt = sub.add_parser(
        "backtest",
        help="replay a period through the planner and report what each strategy would have cost",
        description="Replay a period half-hour by half-hour through the planner and the baselines, and write an "
        "HTML report and a per-slot CSV. With no inputs it uses the bundled real household year and Agile prices. "
        "Figures are estimates, not a bill (see docs/savings.md).",
    )
    g = bt.add_argument_group("prices (default: the bundled Agile region J prices)")
    g.add_argument("--prices", type=Path, help="prices file: the bundled CSV layout, or Octopus API rates (CSV/JSON)")
    g.add_argument("--octopus-product", help="fetch prices from the Octopus API, e.g. AGILE-FLEX-22-11-25")
    g.add_argument("--octopus-region", help="Octopus region letter A-P (with --octopus-product)")
    g.add_argument(
        "--octopus-url",
        default=os.environ.get("BATSCHED_OCTOPUS_BASE_URL", "https://api.octopus.energy"),
        help="Octopus API base URL (env BATSCHED_OCTOPUS_BASE_URL)",
    )
    add_household_args(bt)
    g = bt.add_argument_group("period")
    g.add_argument("--from", dest="first", type=_date, help="first local day (default: where the data starts)")
    g.add_argument("--to", dest="last", type=_date, help="last local day, included (default: where the data ends)")
    add_battery_args(bt)
    g.add_argument("--strategies", default="no_battery,self_use,seed_rule,batsched,bound")
    g = bt.add_argument_group("output")
    g.add_argument("--out", type=Path, default=Path("backtest-report"), help="directory for the HTML and CSV")
    g.add_argument("--week", type=_date, help="the week to chart SOC and price (default: mid-period)")
    g.add_argument("--json", action="store_true", help="print a JSON summary for machines (no progress bar)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    from tools.tariffs.cli import add_parser as add_compare_tariffs

    add_compare_tariffs(sub, _date)
    cfg = sub.add_parser(
        "config",
        help="print every effective setting, its value and where it came from",
        description="Every setting of every service as it would start now: value (secrets hidden) and source "
        "(default, BATSCHED_… variable, secret file, or the original app's variable name), then what became of "
        "each of the original app's variables. Exit status 1 when a service would refuse to start.",
    )
    cfg.add_argument("--json", action="store_true", help="JSON for machines")
    cfg.add_argument("--env", type=Path, metavar="FILE", help="read this env file instead of the environment")
    mig = sub.add_parser(
        "migrate-seed",
        help="move over from the original app: its .env, decision history and pending schedules",
        description="Write a batsched .env and secret files from the original app's .env; with --db, import its "
        "decision history into the executor's journal and its pending schedules as manual windows. The original "
        "files are never changed; running it again adds only what is new.",
    )
    mig.add_argument("--env", type=Path, required=True, metavar="FILE", help="the original app's .env")
    mig.add_argument("--db", type=Path, metavar="FILE", help="the original app's data/Force_Charging.db")
    mig.add_argument("--out", type=Path, metavar="DIR", help="where to write .env and secrets/ (batsched-migrated)")
    mig.add_argument("--data-dir", type=Path, metavar="DIR", help="the executor's data directory (OUT/data)")
    mig.add_argument("--force", action="store_true", help="replace an existing .env and secret files")
    return parser


def model_and_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """The battery model and planner settings from ``add_battery_args``'s options (the planner's defaults)."""
    from services.planner.battery import BatteryModel
    from shared.models import PlannerSettings

    defaults = BatteryModel()
    model = BatteryModel(
        capacity_kwh=args.capacity_kwh or defaults.capacity_kwh,
        grid_charge_kw=args.grid_charge_kw or defaults.grid_charge_kw,
        charge_kw=args.charge_kw or defaults.charge_kw,
        discharge_kw=args.discharge_kw or defaults.discharge_kw,
        eta_charge=args.eta_charge or defaults.eta_charge,
        eta_discharge=args.eta_discharge or defaults.eta_discharge,
        export_price_gbp=defaults.export_price_gbp if args.export_price is None else args.export_price,
    )
    overrides: dict[str, Any] = {}
    if args.min_soc is not None:
        overrides["min_soc_pct"] = args.min_soc
    if args.max_charge_price is not None:
        overrides["max_charge_price_gbp"] = args.max_charge_price
    if args.target_soc_cap is not None:
        overrides["target_soc_cap_pct"] = args.target_soc_cap
    if args.peak:
        overrides["peak_start_local"], overrides["peak_end_local"] = args.peak
    settings = PlannerSettings(**overrides)
    return model, settings


def consumption(args: argparse.Namespace, start: Any, end: Any, names: dict[str, str], command: str) -> Any:
    """The household's half-hourly consumption: a file, the account's meter data, or the bundled household."""
    from tools.backtest import sources

    if args.consumption:
        load = sources.load_consumption(args.consumption)
        names["consumption"] = str(args.consumption)
    elif args.mpan or args.serial:
        if not (args.octopus_api_key and args.mpan and args.serial and start and end):
            raise SystemExit(
                f"batsched {command}: the consumption API needs --octopus-api-key, --mpan, --serial, --from, --to"
            )
        load = sources.octopus_consumption(args.mpan, args.serial, args.octopus_api_key, start, end, args.octopus_url)
        names["consumption"] = f"Octopus API meter {args.mpan}/{args.serial}"
    else:
        from sim.datasets import gross_load_year

        load = gross_load_year()
        names["consumption"] = "bundled real household (gross load, Oct 2021 - Sep 2022)"

    return load


def pv_on_axis(args: argparse.Namespace, axis: Any, i0: int, i1: int, names: dict[str, str]) -> Any:
    """PV energy per slot of ``axis``: a file, the bundled profile scaled to ``--pv-kwp``, or none."""
    from tools.backtest import sources

    if args.pv:
        pv, _ = sources.on_axis(sources.load_pv(args.pv), axis, i0, i1, str(args.pv), fill_outside=True)
        names["pv"] = str(args.pv)
    elif args.pv_kwp > 0:
        from sim.datasets import pv_energy

        pv = pv_energy(axis, args.pv_kwp)
        names["pv"] = f"PVGIS 2016 profile scaled to {args.pv_kwp:g} kWp"
    else:
        pv = np.zeros(len(axis))
        names["pv"] = "none"

    return pv


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bars: list[Any] = []

    def make(total: int, label: str):
        bar = tqdm(total=total, desc=f"{label:<28}", unit="slot", delay=1.0, leave=False, file=sys.stderr)
        bars.append(bar)

        def tick(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return tick

    return make


def backtest(args: argparse.Namespace) -> int:
    try:
        import plotly  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        print("batsched backtest: its report needs the tools extra: pip install -e '.[tools]' (make venv does)")
        return 2
    from tools.backtest import sources
    from tools.backtest.engine import Scenario, run_backtest
    from tools.backtest.report import write_outputs
    from tools.backtest.sources import local_range

    started = time.perf_counter()
    start, end = local_range(args.first, args.last)
    names: dict[str, str] = {}

    if args.prices:
        prices = sources.load_prices(args.prices)
        names["prices"] = str(args.prices)
    elif args.octopus_product:
        if not (args.octopus_region and start and end):
            raise SystemExit("batsched backtest: --octopus-product needs --octopus-region, --from and --to")
        prices = sources.octopus_prices(args.octopus_product, args.octopus_region, start, end, args.octopus_url)
        names["prices"] = f"Octopus API {args.octopus_product} region {args.octopus_region.upper()}"
    else:
        from sim.datasets import agile_prices

        prices = agile_prices()
        names["prices"] = "bundled Agile prices, region J"

    load = consumption(args, start, end, names, "backtest")

    axis, i0, i1 = sources.window(prices, load, start, end)
    price, _ = sources.on_axis(prices, axis, i0, i1, names["prices"], fill_outside=False)
    load_kwh, filled = sources.on_axis(load, axis, i0, i1, names["consumption"], True, args.fill_gaps)
    if filled:
        names["filled consumption"] = f"{len(filled)} half-hour(s) set to the mean: " + ", ".join(
            f"{t:%Y-%m-%dT%H:%MZ}" for t in filled[:10]
        )
    pv = pv_on_axis(args, axis, i0, i1, names)

    model, settings = model_and_settings(args)
    scenario = Scenario(axis, price, load_kwh, pv, np.full(len(axis), model.export_price_gbp), i0, i1)
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    show = not args.json and not args.no_progress and sys.stderr.isatty()
    result = run_backtest(
        scenario, model, settings, args.forecasts, args.start_soc, strategies, _progress_factory(show)
    )
    result.sources = names
    html_path, csv_path = write_outputs(result, args.out, args.week)
    elapsed = time.perf_counter() - started
    annual = result.annual()
    if args.json:
        doc = {
            "period": {
                "start": result.slots[0].isoformat(),
                "end": (result.slots[-1] + np.timedelta64(30, "m")).isoformat(),
                "slots": len(result.slots),
            },
            "strategies": annual,
            "monthly_cost_gbp": result.monthly().round(2).to_dict(orient="index"),
            "inputs": names,
            "settings": result.settings,
            "files": {"html": str(html_path), "csv": str(csv_path)},
            "seconds": round(elapsed, 2),
        }
        print(json.dumps(doc, indent=2, default=str))
        return 0
    local = result.local
    print(f"batsched backtest {local[0]:%Y-%m-%d} to {local[-1]:%Y-%m-%d} ({len(result.slots):,} half-hours)")
    for name, fig in annual.items():
        saving = fig.get("saving_vs_no_battery_gbp")
        star = " *" if name == "bound" else ""
        print(
            f"  {result.runs[name].label + star:<32} £{fig['cost_gbp']:>9,.2f}"
            + ("" if saving is None else f"   saves £{saving:>8,.2f} vs no battery")
        )
    if "bound" in annual:
        print("  * perfect-foresight LP bound: slightly optimistic (a ceiling, not a plan)")
    print(f"  report: {html_path}\n  per-slot CSV: {csv_path}\n  took {elapsed:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config":
        from tools.config_report import main as config_main

        return config_main(args.env, args.json)
    if args.command == "migrate-seed":
        from tools.migrate_seed import main as migrate_main

        return migrate_main(args.env, args.db, args.out, args.data_dir, args.force)
    if args.command == "backtest":
        from tools.backtest.inputs import InputError
        from tools.backtest.octopus import OctopusError

        try:
            return backtest(args)
        except (InputError, OctopusError, ValueError) as exc:
            print(f"batsched backtest: {exc}", file=sys.stderr)
            return 2
    if args.command == "compare-tariffs":
        from tools.backtest.inputs import InputError
        from tools.backtest.octopus import OctopusError
        from tools.tariffs.cli import run as compare_tariffs

        try:
            return compare_tariffs(args)
        except (InputError, OctopusError, ValueError) as exc:
            print(f"batsched compare-tariffs: {exc}", file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
