"""A sweep over data.classes reports: one set of laws per class count, `--where` row filters, and errors of
exactly 0 floored at half of one evaluation example or dropped, always said. Expected values are counted by
hand from how the table is built: synthetic_sweep with budgets 1e14, 1e15, 1e16 has 22 runs of 8 evaluations."""

import contextlib
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.errors import AnalysisError
from analysis.synthetic import synthetic_sweep
from analysis.table.rows import apply_where, parse_where, split_by, zero_errors
from analysis.table.workdirs import read_workdirs

RUNS, EVALS = 22, 8  # per class count
ROWS = RUNS * EVALS  # 176
FAST = ["--starts", "2", "--bootstrap", "0"]


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """10 classes (eval set of 200 examples) and 100 classes (eval set size unknown); one error of exactly 0 in
    each, in the final row of the last run (the largest budget's largest model)."""
    ten = synthetic_sweep(budgets=(1e14, 1e15, 1e16)).assign(num_classes=10, eval_examples=200)
    hundred = synthetic_sweep({"E": 0.3, "A": 15.0, "B": 6.0, "alpha": 0.3, "beta": 0.25},
                              budgets=(1e14, 1e15, 1e16), seed=1).assign(num_classes=100)
    hundred["run_id"] = "k100/" + hundred["run_id"]
    assert len(ten) == len(hundred) == ROWS and ten["run_id"].nunique() == RUNS
    ten_zero, hundred_zero = ten.index[ten["is_final"]][-1], hundred.index[hundred["is_final"]][-1]
    ten.loc[ten_zero, "top1_error"] = hundred.loc[hundred_zero, "top1_error"] = 0.0
    path = tmp_path_factory.mktemp("classes") / "results.csv"
    pd.concat([ten, hundred], ignore_index=True).to_csv(path, index=False)
    return path, ten.loc[ten_zero, "run_id"], hundred.loc[hundred_zero, "run_id"]


@pytest.fixture(scope="module")
def report(table, tmp_path_factory):
    path, _, _ = table
    out = tmp_path_factory.mktemp("report") / "out"
    status, printed, _ = run(["report", str(path), "--out", str(out), "--law", "m4", "--law", "chinchilla",
                              "--formats", "svg", *FAST])
    assert status == 0
    return out, printed


def test_a_mixed_table_gets_one_report_per_class_count_and_an_index(report):
    out, printed = report
    lines = printed.splitlines()
    assert lines[0].startswith("note: the table mixes class counts (10, 100): one report per class count")
    assert f"== num_classes=10: {ROWS} rows -> {out / 'classes-10'}" in lines
    assert f"== num_classes=100: {ROWS} rows -> {out / 'classes-100'}" in lines
    assert lines[-1].startswith(f"wrote {out / 'report.html'} (index of 2 reports: classes-10, classes-100)")
    for folder in ("classes-10", "classes-100"):
        assert (out / folder / "report.html").exists() and (out / folder / "error_vs_compute.svg").exists()
    index = json.loads((out / "report.json").read_text())
    assert index["by"] == "num_classes" and index["automatic"] is True and index["rows_without_value"] == 0
    assert [(group["value"], group["folder"]) for group in index["groups"]] == [(10, "classes-10"),
                                                                               (100, "classes-100")]
    page = (out / "report.html").read_text()
    assert "href='classes-10/report.html'" in page and "href='classes-100/report.html'" in page


def test_each_class_count_is_fitted_on_its_own_rows(report):
    out, _ = report
    ten = json.loads((out / "classes-10" / "report.json").read_text())
    hundred = json.loads((out / "classes-100" / "report.json").read_text())
    assert ten["where"] == ["num_classes=10"] and hundred["where"] == ["num_classes=100"]
    assert ten["rows"] == ROWS and ten["unselected_rows"] == ROWS  # the zero row is floored, so kept
    assert hundred["rows"] == ROWS - 1 and hundred["unselected_rows"] == ROWS  # the zero row is dropped
    (m4_ten, chinchilla_ten), (m4_hundred, chinchilla_hundred) = ten["laws"], hundred["laws"]
    # random guessing over K classes: 1 - 1/K
    assert m4_ten["constants"]["random_guess"] == pytest.approx(0.9)
    assert m4_hundred["constants"]["random_guess"] == pytest.approx(0.99)
    # joint laws use each run's final row: 22 runs; the 100-class run whose final error is 0 lost it
    assert chinchilla_ten["num_points"] == RUNS and chinchilla_hundred["num_points"] == RUNS - 1


def test_zero_errors_are_floored_or_dropped_and_said(report, table):
    out, printed = report
    _, ten_run, hundred_run = table
    ten = json.loads((out / "classes-10" / "report.json").read_text())["zero_errors"]
    hundred = json.loads((out / "classes-100" / "report.json").read_text())["zero_errors"]
    assert (ten["floored"], ten["dropped"], ten["runs"]) == (1, 0, [ten_run])
    assert ten["floors"] == [pytest.approx(0.5 / 200)]  # half of one example of 200
    assert (hundred["floored"], hundred["dropped"], hundred["runs"]) == (0, 1, [hundred_run])
    warnings = [line for line in printed.splitlines() if line.startswith("warning: 1 row of top1_error exactly 0")]
    assert len(warnings) == 2
    assert f"(in runs {ten_run})" in warnings[0] and "floored at half of one evaluation example, 0.5/n = 0.0025" \
        in warnings[0]
    assert f"(in runs {hundred_run})" in warnings[1] and "dropped (the evaluation set's size is unknown: pass " \
        "--eval-examples N" in warnings[1]
    assert f"{ROWS - 1} usable rows where num_classes=100 ({ROWS} other rows left out), 0 dropped (status not " \
        "completed), 1 dropped (y exactly 0)" in printed
    page = (out / "classes-100" / "report.html").read_text()
    assert "1 row of top1_error exactly 0" in page and "<code>num_classes=100</code>" in page


def test_where_selects_the_rows_that_fit_uses(table, tmp_path):
    path, _, _ = table
    status, printed, _ = run(["fit", str(path), "--law", "power", *FAST, "--json", str(tmp_path / "fit.json"),
                              "--where", "num_classes=10", "--where", "is_final=true"])
    record = json.loads((tmp_path / "fit.json").read_text())
    assert status == 0 and record["rows"] == RUNS and record["where"] == ["num_classes=10", "is_final=true"]
    assert record["unselected_rows"] == 2 * ROWS - RUNS and record["zero_errors"]["floored"] == 1  # the final 0
    assert f"{RUNS} usable rows where num_classes=10 and is_final=true" in printed


def test_eval_examples_floors_what_would_be_dropped(table, tmp_path):
    path, _, _ = table
    status, printed, _ = run(["fit", str(path), "--law", "power", *FAST, "--json", str(tmp_path / "fit.json"),
                              "--where", "num_classes=100", "--eval-examples", "1000"])
    record = json.loads((tmp_path / "fit.json").read_text())
    assert status == 0 and record["rows"] == ROWS
    assert record["zero_errors"]["floored"] == 1 and record["zero_errors"]["floors"] == [pytest.approx(0.0005)]
    assert "warning: 1 row of top1_error exactly 0" in printed and "0.5/n = 0.0005" in printed


def test_zero_errors_drop_drops_even_a_known_resolution(table, tmp_path):
    path, _, _ = table
    status, printed, _ = run(["fit", str(path), "--law", "power", *FAST, "--json", str(tmp_path / "fit.json"),
                              "--where", "num_classes=10", "--zero-errors", "drop"])
    record = json.loads((tmp_path / "fit.json").read_text())
    assert status == 0 and record["rows"] == ROWS - 1 and record["zero_errors"]["dropped"] == 1
    assert "dropped (--zero-errors drop)" in printed


def test_a_report_of_one_class_count_is_one_report(table, tmp_path):
    path, _, _ = table
    out = tmp_path / "one"
    status, printed, _ = run(["report", str(path), "--out", str(out), "--law", "power", "--formats", "svg",
                              "--where", "num_classes=10", *FAST])
    assert status == 0 and "mixes class counts" not in printed
    record = json.loads((out / "report.json").read_text())
    assert record["rows"] == ROWS and record["where"] == ["num_classes=10"] and not (out / "classes-10").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--where", "num_classes"], "bad --where 'num_classes': write COLUMN=VALUE"),
    (["--where", "colour=red"], "--where 'colour=red': the table has no column 'colour'"),
    (["--where", "num_classes=7"], "--where 'num_classes=7' leaves no rows to fit (of 352); column 'num_classes' "
                                   "holds 10, 100"),
    (["--where", "num_classes<=ten"], "'ten' is not a number"),
    (["--where", "family<3"], "< compares numbers, but column 'family' is not numeric"),
    (["--where", "num_classes<3,4"], "< takes one number"),
    (["--where", "is_final=maybe"], "column 'is_final' is true/false"),
    (["--where", "num_classes=100", "--zero-errors", "floor"], "1 row of top1_error exactly 0"),
    (["--eval-examples", "0"], "--eval-examples must be at least 1"),
    ([], "the table mixes datasets with [10, 100] classes, whose random-guess top1_error differs; fit one class "
         "count at a time: --where num_classes=10"),
])
def test_bad_filters_are_errors_with_status_2(table, tmp_path, arguments, message):
    path, _, _ = table
    status, _, error = run(["fit", str(path), "--law", "power", *FAST, "--json", str(tmp_path / "fit.json"),
                            *arguments])
    assert status == 2 and error.startswith("error: ") and message in error, error
    assert not (tmp_path / "fit.json").exists()


def test_floor_without_a_size_names_the_fixes(table, tmp_path):
    path, _, _ = table
    _, _, error = run(["fit", str(path), "--law", "power", *FAST, "--json", str(tmp_path / "fit.json"),
                       "--where", "num_classes=100", "--zero-errors", "floor"])
    assert "--eval-examples N" in error and "eval_examples column" in error and "--zero-errors drop" in error


def test_where_conditions_by_hand():
    frame = pd.DataFrame({"k": [10, 10, 100, 1000], "lr": [1e-3, 3e-3, 1e-3, 1e-2], "name": ["a", "b", "a", "c"],
                          "final": [True, False, True, True]})

    def kept(*items):
        return apply_where(frame, parse_where(items))["lr"].tolist()

    assert kept("k=10") == [1e-3, 3e-3]
    assert kept("k=100,1000") == [1e-3, 1e-2]
    assert kept("k == 100") == [1e-3]
    assert kept("k!=10") == [1e-3, 1e-2]
    assert kept("k>=100", "lr<0.005") == [1e-3]
    assert kept("k>10") == [1e-3, 1e-2] and kept("k<100") == [1e-3, 3e-3] and kept("k<=100") == [1e-3, 3e-3, 1e-3]
    assert kept("lr=0.001") == [1e-3, 1e-3]
    assert kept("name=a") == [1e-3, 1e-3] and kept("name!=a,b") == [1e-2]
    assert kept("final=true") == [1e-3, 1e-3, 1e-2] and kept("final=0") == [3e-3]
    with pytest.raises(AnalysisError, match="an empty value"):
        parse_where(["k=10,"])


def test_split_by_sorts_groups_and_counts_rows_without_a_value():
    frame = pd.DataFrame({"num_classes": [100.0, 10.0, np.nan, 10.0], "y": [1, 2, 3, 4]})
    groups, missing = split_by(frame, "num_classes")
    assert [(value, group["y"].tolist()) for value, group in groups] == [(10, [2, 4]), (100, [1])]
    assert missing == 1


def test_zero_errors_by_hand():
    frame = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "top1_error": [0.0, 0.0, 0.25, 0.0],
                          "eval_examples": [100, np.nan, 100, 50]})
    floored, handled = zero_errors(frame, "top1_error")
    assert floored["top1_error"].tolist() == [0.005, 0.25, 0.01]  # 0.5/100 and 0.5/50; b's size is unknown
    assert (handled.floored, handled.dropped, handled.floors) == (2, 1, (0.01 / 2, 0.01))
    assert "3 rows of top1_error exactly 0 (in runs a, b, d)" in handled.message
    assert "2 floored at half of one evaluation example, 0.5/n = 0.005, 0.01; 1 dropped" in handled.message
    kept, handled = zero_errors(frame, "top1_error", "drop")
    assert kept["run_id"].tolist() == ["c"] and handled.dropped == 3
    assert zero_errors(frame, "top1_error", eval_examples=1000)[0]["top1_error"].tolist() == [0.0005, 0.0005, 0.25,
                                                                                              0.0005]
    # a y column not counted on the evaluation split has no known size: auto drops
    assert zero_errors(frame.rename(columns={"top1_error": "minival_error"}), "minival_error")[1].dropped == 3
    untouched, handled = zero_errors(frame.assign(top1_error=0.5), "top1_error")
    assert handled.message is None and untouched["top1_error"].tolist() == [0.5] * 4
    assert math.isnan(untouched["eval_examples"].iloc[1])


def test_the_workdir_reader_fills_eval_examples_from_result_json(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text(json.dumps({
        "status": "completed", "params": 1000, "flops_per_example": 6000.0, "num_classes": 10, "eval_examples": 500,
        "step": 10, "examples_seen": 80, "final_eval": {"top1_error": 0.0, "eval_loss": 0.1}}))
    table = read_workdirs(tmp_path)
    assert table["eval_examples"].tolist() == [500]
    assert zero_errors(table, "top1_error")[0]["top1_error"].tolist() == [0.001]
