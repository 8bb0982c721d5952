"""Backtest: fit below a compute cut-off, score the extrapolation above it, rank the laws."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.backtest import backtest, default_cutoff
from analysis.errors import AnalysisError
from analysis.laws import CHINCHILLA, POWER, SATURATING
from analysis.request import FitRequest
from analysis.synthetic import sample_law

COMPUTE = np.geomspace(1e12, 1e20, 40)


@pytest.fixture(scope="module")
def saturating_table() -> pd.DataFrame:
    error = sample_law(SATURATING, {"a": 3e4, "b": 0.35, "c": 0.15, "d": 1e11}, (COMPUTE,), noise=0.01, seed=2)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(len(COMPUTE))], "compute": COMPUTE, "top1_error": error})


def request(law, **options):
    return FitRequest(law=law, x=("compute",), y="top1_error", points="all", starts=2, **options)


def test_the_law_that_made_the_data_extrapolates_best(saturating_table):
    result = backtest([request(POWER), request(SATURATING)], saturating_table)
    assert result.cutoff == pytest.approx(1e18) and result.column == "compute"
    best, worst = result.rows
    assert (best.law, best.rank, worst.law, worst.rank) == ("saturating", 1, "power", 2)
    assert best.rmse_log < 0.03 < 3 * best.rmse_log < worst.rmse_log
    assert best.train_points + best.test_points == len(COMPUTE) and best.test_points == 10


def test_laws_that_cannot_be_scored_say_why(saturating_table):
    beyond = backtest([request(POWER)], saturating_table, cutoff=1e21).rows[0]
    assert beyond.rank is None and math.isnan(beyond.rmse_log) and beyond.note == "no points above the cut-off"
    early = backtest([request(SATURATING)], saturating_table, cutoff=2e12).rows[0]
    assert early.rank is None and "needs at least 5" in early.note


def test_default_cutoff_holds_out_the_top_quarter_of_the_log_compute_range():
    assert default_cutoff(np.array([1e12, 1e16, 1e20])) == pytest.approx(1e18)
    assert default_cutoff(np.array([1e12, 1e20]), holdout=0.5) == pytest.approx(1e16)


def test_a_joint_law_without_compute_column_is_refused(saturating_table):
    joint = FitRequest(law=CHINCHILLA, x=("params", "examples_seen"), y="top1_error", points="all")
    with pytest.raises(AnalysisError, match="no compute column"):
        backtest([joint], saturating_table.drop(columns="compute"))


def test_a_law_left_unscored_by_the_common_cutoff_gets_its_own():
    """The issue's case: the envelope ends far below the table's largest compute (one late run is worse than
    everything before it), so the common cut-off leaves no envelope point above it."""
    compute = np.geomspace(1e12, 1e16, 24)
    table = pd.DataFrame({"run_id": [f"r{i}" for i in range(25)], "compute": [*compute, 1e20],
                          "top1_error": [*(0.1 + 30.0 * compute ** -0.12), 0.9]})  # written out: a·C^-b + c
    envelope = FitRequest(law=POWER, x=("compute",), y="top1_error", points="envelope", starts=2)
    result = backtest([envelope], table)
    assert result.cutoff == pytest.approx(1e18)  # three quarters of the way from 1e12 to 1e20
    (row,) = result.rows
    assert row.cutoff == pytest.approx(default_cutoff(compute)) and row.test_points == 6  # 1e15 .. 1e16
    assert row.rank == 1 and math.isfinite(row.rmse_log)
    assert row.note.startswith("at the common cut-off 1e+18: no points above the cut-off")
    (warning,) = result.warnings
    assert warning.startswith("backtest: power scored above its own cut-off 1e+15")


def test_a_law_that_cannot_be_scored_says_so_in_the_warnings(saturating_table):
    few = saturating_table.iloc[:6]  # 6 points: the saturating law needs 5 to fit, so no cut-off leaves enough
    result = backtest([request(POWER), request(SATURATING)], few)
    scored = {row.law: row for row in result.rows}
    assert scored["power"].rank == 1 and scored["saturating"].rank is None
    assert any(w.startswith("backtest: saturating could not be scored (") and "needs at least 5" in w
               for w in result.warnings)
