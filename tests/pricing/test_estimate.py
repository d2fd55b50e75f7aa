"""The price estimate as a pure function (``services/pricing/estimate.py``) and AgilePredict's checks, on the real
bundled Agile prices: what it covers, what it reads, what its paths are made of, and when it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from services.pricing.agilepredict import AgilePredictError, parse, problem
from services.pricing.estimate import day_matrix, estimate, to_message, with_external
from shared.models import PriceEstimate
from shared.slots import LONDON, SLOT, agile_day_bounds
from sim.datasets import agile_prices

UNTIL = datetime(2023, 7, 1, 22, 0, tzinfo=UTC)  # 23:00 BST: the end of a day's publication


def history(until: datetime = UNTIL, days: int = 130) -> pd.Series:
    p = agile_prices()
    return p[(p.index >= until - timedelta(days=days)) & (p.index < until)]


def run(h: pd.Series, until: datetime = UNTIL, hours: float = 48, **kw):
    return estimate(h.index, h.to_numpy(), until, hours, LONDON, **kw)


def test_it_covers_the_hours_after_the_published_prices_and_reads_nothing_later() -> None:
    h = history()
    est = run(h)
    assert est is not None
    assert est.starts[0] == UNTIL and len(est.starts) == 96
    assert all(b - a == SLOT for a, b in zip(est.starts, est.starts[1:], strict=False))
    assert est.paths.shape == (21, 96) and np.isfinite(est.paths).all()  # 14 analogs and the last 7 days
    assert (est.low <= est.median).all() and (est.median <= est.high).all()
    # Prices at or after the end of the publication (here: nonsense) change nothing.
    later = pd.Series(9.0, index=pd.date_range(UNTIL, periods=200, freq="30min"))
    again = run(pd.concat([h, later]))
    assert again is not None and np.array_equal(again.paths, est.paths)


def test_a_higher_price_level_moves_the_estimate_by_as_much() -> None:
    """The analogs are chosen on level-free features, so a region or year 10p dearer gets the same paths + 10p."""
    h = history()
    base, dearer = run(h), run(h + 0.10)
    assert base is not None and dearer is not None
    assert dearer.median == pytest.approx(base.median + 0.10, abs=1e-9)


def test_each_path_is_a_real_days_shape() -> None:
    """A path keeps a real day's spread: over the first delivery day it is some past day moved in level."""
    h = history()
    est = run(h, hours=24)
    assert est is not None
    days = day_matrix(h.index, h.to_numpy(), LONDON)
    assert days is not None
    shapes = days.values - days.values.mean(axis=1, keepdims=True)
    for path in est.paths:
        shape = path - path.mean()
        assert np.nanmin(np.abs(shapes - shape).max(axis=1)) < 1e-9
    # and the spread is a day's, not a smoothed average's
    assert np.mean(est.paths.max(axis=1) - est.paths.min(axis=1)) > 1.5 * (est.median.max() - est.median.min()) / 2


@pytest.mark.parametrize("day", ["2023-10-29", "2023-03-26"])  # 50 and 46 half-hours
def test_clock_change_days_are_estimated_slot_by_slot(day: str) -> None:
    until = agile_day_bounds(pd.Timestamp(day).date())[0]  # published up to the start of the clock-change day
    est = run(history(until), until)
    assert est is not None
    assert len(est.starts) == 96 and np.isfinite(est.paths).all()
    assert est.starts[0].astimezone(LONDON).hour == 23


def test_a_partial_publication_is_estimated_from_its_last_slot() -> None:
    until = UNTIL - timedelta(hours=9)  # only the first 14 hours of the day published
    est = run(history(until), until)
    assert est is not None and est.starts[0] == until and np.isfinite(est.paths).all()


def test_cold_start_draws_on_the_library_and_says_so() -> None:
    short = history(days=4)
    library = day_matrix(agile_prices().index, agile_prices().to_numpy(), LONDON)
    own_only = run(short)
    assert own_only is not None and own_only.paths.shape[0] < 21  # four days hold only a few paths
    est = run(short, library=library, library_name="the bundled history")
    assert est is not None and est.paths.shape[0] == 14 + 4
    assert est.own_days == 4 and est.library_days > 60
    assert "the bundled history around this time of year (cold start)" in est.learned_from
    assert run(history(days=1)) is None  # a day alone has nothing that followed it


def test_an_external_forecast_recentres_the_paths_and_keeps_their_spread() -> None:
    est = run(history())
    assert est is not None
    ext_starts = est.starts[:48]
    med = np.full(48, 0.30)
    out = with_external(est, ext_starts, med, med - 0.02, med + 0.02, "agilepredict")
    assert out.median[:48] == pytest.approx(med) and out.median[48:] == pytest.approx(est.median[48:])
    assert out.method == "agilepredict+analog-v1"
    assert (out.paths[:, :48] - out.median[:48]) == pytest.approx(est.paths[:, :48] - est.median[:48])


def test_the_message_is_an_estimate_never_a_price() -> None:
    est = run(history())
    assert est is not None
    msg = to_message(est, "E-1R-AGILE-24-10-01-J", UNTIL, UNTIL)
    doc = msg.model_dump(mode="json")
    assert doc["is_estimate"] is True and "value_inc_vat" not in str(doc)
    assert msg.valid_until == UNTIL + 96 * SLOT and len(msg.scenarios_gbp) == 21
    assert PriceEstimate.model_validate_json(msg.to_json()) == msg
    bad = doc | {"scenarios_gbp": [p[:-1] for p in doc["scenarios_gbp"]]}
    with pytest.raises(ValidationError, match="one value per slot"):
        PriceEstimate.model_validate(bad)
    slot = doc["slots"][0] | {"low_gbp": doc["slots"][0]["median_gbp"] + 0.01}
    with pytest.raises(ValidationError, match="low_gbp <= median_gbp"):
        PriceEstimate.model_validate(doc | {"slots": [slot, *doc["slots"][1:]]})


# --------------------------------------------------------------------------------------------- AgilePredict


def ap_doc(created: str = "2023-07-01T20:00:00Z", first: datetime = UNTIL - 4 * SLOT, n: int = 96, **over) -> list:
    real = agile_prices()
    prices = []
    for k in range(n):
        t = first + k * SLOT
        p = float(real[pd.Timestamp(t)]) * 100
        prices.append(
            {"date_time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "agile_pred": p, "agile_low": p - 3, "agile_high": p + 3}
            | over
        )
    return [{"name": "Region | J", "created_at": created, "prices": prices}]


def published() -> dict[datetime, float]:
    h = history(days=1)
    return {t.to_pydatetime(): float(v) for t, v in h.items()}


NOW = UNTIL - timedelta(hours=1)
BOUNDS = (-0.5, 1.0)


def test_a_good_agilepredict_forecast_is_usable() -> None:
    fc = parse(ap_doc())
    assert fc.starts[0] == UNTIL - 4 * SLOT and fc.median[0] == pytest.approx(float(agile_prices()[fc.starts[0]]))
    assert problem(fc, NOW, UNTIL, published(), timedelta(hours=24), BOUNDS) is None


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"created": "2023-06-29T20:00:00Z"}, "late: made at"),
        ({"first": UNTIL + 4 * SLOT}, "late: it does not reach"),
        ({"agile_pred": 250.0, "agile_high": 260.0}, "implausible: prices outside"),
        ({"agile_low": 99.0, "agile_high": 100.0}, "agile_low <= agile_pred <= agile_high"),
    ],
)
def test_a_late_or_implausible_forecast_is_not_used(doc: dict, reason: str) -> None:
    kw = {k: v for k, v in doc.items() if k in ("created", "first")}
    over = {k: v for k, v in doc.items() if k not in kw}
    fc = parse(ap_doc(**kw, **over))
    assert reason in (problem(fc, NOW, UNTIL, published(), timedelta(hours=24), BOUNDS) or "")


def test_a_forecast_far_from_the_published_prices_is_implausible() -> None:
    doc = ap_doc()
    for e in doc[0]["prices"]:
        for k in ("agile_pred", "agile_low", "agile_high"):
            e[k] += 20.0  # another region or a unit slip
    why = problem(parse(doc), NOW, UNTIL, published(), timedelta(hours=24), BOUNDS)
    assert why is not None and "from the published prices on the 4 slots it overlaps" in why


@pytest.mark.parametrize(
    "doc",
    [
        {},
        [],
        [{"created_at": "2023-07-01T20:00:00Z", "prices": []}],
        [{"created_at": "yesterday", "prices": ap_doc()[0]["prices"]}],
        [{"created_at": "2023-07-01T20:00:00", "prices": ap_doc()[0]["prices"]}],  # no zone
        ap_doc(agile_pred="12.3"),
        ap_doc(agile_pred=True),
        ap_doc(agile_pred=float("nan")),
        ap_doc(date_time="2023-07-01T22:10:00Z"),
        [{"created_at": "2023-07-01T20:00:00Z", "prices": ap_doc()[0]["prices"] * 2}],  # every slot twice
    ],
)
def test_a_malformed_answer_is_an_error_not_data(doc) -> None:
    with pytest.raises(AgilePredictError):
        parse(doc)
