"""One engine: ``make bench-planner``, ``batsched backtest`` and ``batsched compare-tariffs`` replay the same month
(June 2023, region J Agile, the benchmark's household and settings) to within a penny of each other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest

from services.planner.battery import limits_for
from services.planner.replay import Batsched, replay
from shared.clock import FixedClock
from sim.octopus import IMPORT_PRODUCT, FakeOctopus
from tools import bench_planner as bench
from tools.backtest.engine import Scenario, run_backtest
from tools.tariffs.catalog import TariffChoice
from tools.tariffs.compare import compare
from tools.tariffs.rates import RateCache

MONTH = bench.Scenario("J-2023-06", "2023-06-01", "2023-07-01", 0.0, True)


@pytest.fixture
def octopus() -> Iterator[FakeOctopus]:
    api = FakeOctopus(FixedClock(datetime(2024, 5, 20, tzinfo=UTC))).start()
    yield api
    api.stop()


def test_a_month_costs_the_same_to_the_penny_in_bench_backtest_and_compare(octopus: FakeOctopus, tmp_path) -> None:
    w = bench.build_world(MONTH)
    lim = limits_for(bench.MODEL, bench.SETTINGS)
    t0 = time.perf_counter()
    bench_cost = replay(w, Batsched(w, bench.MODEL, bench.SETTINGS, "perfect"), bench.MODEL, lim, lim.min_kwh).cost_gbp
    t_bench = time.perf_counter() - t0

    sc = Scenario(w.slots, w.price, w.load, w.pv, w.export_price, w.start, w.stop)
    backtest_cost = run_backtest(sc, bench.MODEL, bench.SETTINGS, "perfect", 0.0, ("batsched",)).runs["batsched"].total

    load = pd.Series(w.load, index=w.slots)
    start, end = w.slots[w.start].to_pydatetime(), w.slots[w.stop].to_pydatetime()
    cache = RateCache(octopus.url, tmp_path)
    (agile,) = compare(
        (TariffChoice("Agile", IMPORT_PRODUCT, None),),
        lambda product, a, b: cache.series(product, "J", a, b),
        load, start, end, None, bench.MODEL, bench.SETTINGS, "perfect", 0.0,
    )  # fmt: skip
    print(
        f"June 2023: bench £{bench_cost:.4f} ({t_bench:.1f} s), backtest £{backtest_cost:.4f}, "
        f"compare-tariffs £{agile.cost_battery_gbp:.4f}"
    )
    assert agile.days == 30
    assert abs(backtest_cost - bench_cost) < 0.01
    assert abs(agile.cost_battery_gbp - bench_cost) < 0.01
