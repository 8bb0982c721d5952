"""A table whose runs trained on nested subsets of several sizes: the compute laws and frontiers use the runs on the
largest training set only, and the data axis (the smaller subsets at one budget, with the largest set's runs
there) gets Rosenfeld et al.'s joint form fitted on model size and training-set size."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.data_axis import fit_data_axis, split_data_axis
from analysis.frontier import flops_model, isoflop_frontier
from analysis.synthetic import synthetic_sweep
from tests.law_formulas import rosenfeld

FULL = 1_281_167  # synthetic_sweep's training-set size
SUBSETS = (10_000, 40_000, 160_000)
# Rosenfeld et al.'s eq. 5 with data exponent 0.5 and model exponent 0.35, for top-1 error over 1000 classes
TRUE = {"a": 60.0, "alpha": 0.5, "b": 40.0, "beta": 0.35, "c_inf": 0.05}
GUESS = 1.0 - 1.0 / 1000


def subset_runs(top: pd.DataFrame, sizes: tuple[int, ...], error) -> pd.DataFrame:
    """Copies of the final rows `top` trained on each of `sizes` examples, with top-1 error `error(params, size)`."""
    rows = []
    for size in sizes:
        runs = top.copy()
        runs["run_id"] = runs["run_id"] + f"/D{size}"
        runs["train_examples"] = size
        runs["top1_error"] = error(runs["params"].to_numpy(dtype=np.float64), float(size))
        rows.append(runs)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return synthetic_sweep()


def test_runs_on_smaller_subsets_leave_the_compute_frontier_as_it_was(sweep):
    final = sweep[sweep["is_final"]]
    top = final[np.isclose(final["compute"], 1e17, rtol=0.1)].sort_values("params")
    smallest = top.iloc[:3]  # the data axis trains the three smallest sizes of the top budget
    # better than any run of the sweep: were they counted, they would move the top budget's parabola
    subsets = subset_runs(smallest, SUBSETS, lambda params, size: np.full(len(params), 0.01))
    mixed = pd.concat([sweep, subsets], ignore_index=True)
    compute, axis, note = split_data_axis(mixed)
    pd.testing.assert_frame_equal(compute, sweep.reset_index(drop=True))
    assert sorted(axis["train_examples"].unique()) == [*SUBSETS, FULL]
    assert len(top) > 3 and len(axis) == 4 * 3  # the grid: three subsets and the full set, three sizes
    assert set(axis["params"]) == set(smallest["params"])
    assert "the largest (1,281,167 examples)" in note
    alone = isoflop_frontier(sweep, "top1_error", flops_model(sweep), resamples=20)
    split = isoflop_frontier(compute, "top1_error", flops_model(compute), resamples=20)
    assert split.allocation.n_opt == pytest.approx(alone.allocation.n_opt)


def test_subsets_at_a_lower_budget_are_in_neither_part_and_the_note_says_so(sweep):
    final = sweep[sweep["is_final"]]
    low = subset_runs(final[np.isclose(final["compute"], 1e15, rtol=0.1)], (10_000,),
                      lambda params, size: np.full(len(params), 0.5))
    top_rows = final[np.isclose(final["compute"], 1e17, rtol=0.1)]
    top = subset_runs(top_rows, (10_000,), lambda params, size: np.full(len(params), 0.5))
    _, axis, note = split_data_axis(pd.concat([sweep, low, top], ignore_index=True))
    assert len(axis) == 2 * len(top_rows)
    assert np.allclose(axis["compute"], 1e17, rtol=0.1)
    assert f"{len(low)} runs on smaller subsets at lower or unknown compute are in neither" in note


def test_one_training_set_has_no_data_axis(sweep):
    compute, axis, note = split_data_axis(sweep)
    assert compute is sweep and axis is None and note is None


def test_the_data_axis_law_recovers_the_exponents_of_rosenfelds_form():
    params = np.geomspace(1e5, 1e8, 5)
    sizes = (5_000, 20_000, 80_000, 320_000)
    rng = np.random.default_rng(3)
    rows = [{"run_id": f"N{m:.3g}/D{n}", "params": m, "train_examples": n, "compute": 1e17, "is_final": True,
             "num_classes": 1000,
             "top1_error": float(rosenfeld(m, n, **TRUE, random_guess=GUESS)) * np.exp(0.01 * rng.standard_normal())}
            for m in params for n in sizes]
    compute, axis, note = split_data_axis(pd.DataFrame(rows))
    assert len(compute) == len(params) and len(axis) == len(rows)
    found = fit_data_axis(axis, note, "top1_error", GUESS, resamples=60, by_run=True, seed=0, confidence=0.95)
    estimates = found.law.boot.params()
    for name in ("alpha", "beta"):
        assert estimates[name].value == pytest.approx(TRUE[name], rel=0.1)
        assert estimates[name].low <= TRUE[name] <= estimates[name].high
    assert found.problems == ()


def test_the_report_has_the_data_axis_section_figure_and_record(sweep, tmp_path, capsys):
    final = sweep[sweep["is_final"]]
    top = final[np.isclose(final["compute"], 1e17, rtol=0.1)]
    subsets = subset_runs(top, SUBSETS, lambda params, size: rosenfeld(params, size, **TRUE, random_guess=GUESS))
    table = tmp_path / "results.csv"
    pd.concat([sweep, subsets], ignore_index=True).to_csv(table, index=False)
    out = tmp_path / "report"
    assert main(["report", str(table), "--out", str(out), "--bootstrap", "20", "--law", "power", "--no-backtest",
                 "--formats", "svg"]) == 0
    printed = capsys.readouterr().out
    assert "data axis: the table has runs on 4 training-set sizes" in printed
    record = json.loads((out / "report.json").read_text())
    axis = record["data_axis"]
    assert axis["train_examples"] == [*SUBSETS, FULL]
    assert axis["runs"] == 4 * len(top) and len(axis["grid"]) == 4 * len(top)
    assert axis["law"]["law"] == "rosenfeld" and axis["law"]["x"] == ["params", "train_examples"]
    assert record["rows"] == len(sweep)  # the compute study saw the full set's rows only
    assert (out / "error_vs_train_examples.svg").exists()
    assert "<h2>Data axis</h2>" in (out / "report.html").read_text()


def test_a_data_axis_without_model_sizes_is_skipped_with_warnings_not_a_traceback(sweep, tmp_path, capsys):
    final = sweep[sweep["is_final"]]
    top = final[np.isclose(final["compute"], 1e17, rtol=0.1)]
    broken = subset_runs(top, (10_000,), lambda params, size: np.full(len(params), 0.2))
    broken["params"] = np.nan
    table = tmp_path / "results.csv"
    pd.concat([sweep, broken], ignore_index=True).to_csv(table, index=False)
    assert main(["report", str(table), "--out", str(tmp_path / "report"), "--bootstrap", "0", "--law", "power",
                 "--no-backtest", "--formats", "svg"]) == 0
    printed = capsys.readouterr().out
    assert "warning: skipped the data axis's rosenfeld fit: column 'params' has" in printed
    assert "warning: skipped figure error_vs_train_examples: no run of the data axis has a positive params" in printed


def test_subset_runs_without_a_positive_compute_make_every_final_row_the_data_axis(sweep):
    final = sweep[sweep["is_final"]]
    broken = subset_runs(final.iloc[:3], (10_000,), lambda params, size: np.full(len(params), 0.2))
    broken["compute"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning about the log of 0
        _, axis, note = split_data_axis(pd.concat([sweep, broken], ignore_index=True))
    assert note.endswith("the data axis is every run's final row") and len(axis) == 3 + len(final)
