"""The history trends recover known trends from generated data: the compute cost of halving the error, the
error's halving time, and the compute-halving time of algorithmic progress, each inside its interval."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import Estimate
from analysis.history.fit import (
    FitOptions,
    _reciprocal,
    compute_trend,
    format_trend,
    progress_trend,
    time_trend,
    trend_record,
)

OPTIONS = FitOptions(resamples=60, seed=1)


def generated(count: int = 40, seed: int = 0, *, b: float = 0.15, g: float = 0.0, noise: float = 0.05) -> pd.DataFrame:
    """Models with error = 8·C^(-b)·exp(-g·(year - 2010)) times log-normal noise, compute and dates spread apart."""
    rng = np.random.default_rng(seed)
    year = rng.uniform(2012, 2023, count)
    compute = 10 ** rng.uniform(17, 22, count)
    error = 8.0 * compute ** -b * np.exp(-g * (year - 2010) + noise * rng.standard_normal(count))
    return pd.DataFrame({"model": [f"m{index}" for index in range(count)], "compute": compute, "top1_error": error,
                         "decimal_year": year, "year": np.floor(year)})


def inside(estimate: Estimate, truth: float) -> bool:
    return estimate.low <= truth <= estimate.high


def test_compute_trend_recovers_the_cost_of_halving_the_error():
    trend = compute_trend(generated(b=0.15), "top1_error", "imagenet-1k", OPTIONS)
    cost = trend.headline["compute_per_error_halving"]
    assert cost.value == pytest.approx(2 ** (1 / 0.15), rel=0.15) and inside(cost, 2 ** (1 / 0.15))
    assert cost.low < cost.value < cost.high


def test_time_trend_recovers_the_halving_time_of_the_error_over_all_rows():
    rows = generated(b=0.0, g=0.2)
    trend = time_trend(rows, "top1_error", "imagenet-1k", FitOptions(resamples=60, time_points="all"))
    years = trend.headline["error_halving_years"]
    assert years.value == pytest.approx(math.log(2) / 0.2, rel=0.1) and inside(years, math.log(2) / 0.2)
    assert trend.predict(np.array([2010.0]))[0] == pytest.approx(8.0, rel=0.1)


def test_time_trend_on_records_keeps_only_models_that_beat_every_earlier_one():
    rows = generated(b=0.0, g=0.2, noise=0.3)
    trend = time_trend(rows, "top1_error", "imagenet-1k", FitOptions(resamples=0))
    kept = trend.rows.sort_values("decimal_year")["top1_error"].to_numpy()
    assert 3 <= len(kept) < len(rows) and (np.diff(kept) < 0).all()


def test_progress_trend_recovers_the_months_in_which_the_compute_for_a_fixed_error_halves():
    b, g = 0.15, 0.1  # compute needed falls by e^(g/b) a year: halves every 12·ln2·b/g = 12.5 months
    trend = progress_trend(generated(60, b=b, g=g), "top1_error", "imagenet-1k", OPTIONS)
    months, truth = trend.headline["compute_halving_months"], 12 * math.log(2) * b / g
    assert months.value == pytest.approx(truth, rel=0.15) and inside(months, truth)
    record = trend_record(trend)
    assert record["headline"]["compute_halving_months"]["value"] == pytest.approx(months.value)
    assert "Erdil & Besiroglu 2022" in format_trend(record) and "months" in format_trend(record)


def test_a_rate_interval_reaching_zero_leaves_the_halving_time_unbounded():
    assert _reciprocal(Estimate(0.05, -0.01, 0.1), 1.0) == Estimate(20.0, 10.0, math.inf)
    assert math.isnan(_reciprocal(Estimate(0.05, math.nan, math.nan), 1.0).low)
