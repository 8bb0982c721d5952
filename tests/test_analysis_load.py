"""Loading results: CSV, Parquet, folders of run workdirs, column mappings; which rows are fitted."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.points import final_rows, select_points
from analysis.request import chance_level
from analysis.synthetic import synthetic_sweep
from analysis.table.contract import RESULT_COLUMNS, parse_mapping
from analysis.table.load import load_results


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    table = synthetic_sweep(budgets=(1e14, 1e15), evals_per_run=3)
    table.loc[table.index[:4], "status"] = "failed"
    table.loc[table.index[4:6], "status"] = "diverged"
    return table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_load_with_unfinished_rows_dropped_and_counted(tmp_path, sweep, suffix):
    path = tmp_path / f"results{suffix}"
    sweep.to_csv(path, index=False) if suffix == ".csv" else sweep.to_parquet(path, index=False)
    results = load_results(path)
    assert results.dropped == 6
    assert len(results.frame) == len(sweep) - 6
    assert set(results.frame["status"]) == {"completed"}
    assert list(results.frame.columns) == list(RESULT_COLUMNS)


def test_column_mapping_renames_the_tables_own_names(tmp_path):
    table = pd.DataFrame({"name": ["a", "b"], "flops": [1e15, 2e15], "err": [0.5, 0.4]})
    table.to_csv(tmp_path / "mine.csv", index=False)
    results = load_results(tmp_path / "mine.csv", parse_mapping(["run_id=name", "compute=flops"]))
    assert {"run_id", "compute", "err"} <= set(results.frame.columns)
    assert results.dropped == 0  # no status column: every row counts
    with pytest.raises(AnalysisError, match=r"names \['size'\] but the table has no such column"):
        load_results(tmp_path / "mine.csv", {"params": "size"})
    with pytest.raises(AnalysisError, match="write NAME=COLUMN"):
        parse_mapping(["params"])


def write_run(workdir, result, lines):
    workdir.mkdir(parents=True)
    (workdir / "result.json").write_text(json.dumps(result))
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (workdir / "config.json").write_text(json.dumps({"seed": 3, "optim": {"lr": 0.01, "schedule": "cosine"},
                                                     "wandb": {"group": "demo"}}))


def test_a_folder_of_workdirs_becomes_one_row_per_eval_line(tmp_path):
    base = {"family": "resnet", "params": 1000, "flops_per_example": 50.0, "num_classes": 10, "batch_size": 8}
    def train(step, loss):
        return {"step": step, "kind": "train", "examples_seen": 8 * step, "train_loss": loss}

    def evaluation(step, error):
        return {"step": step, "kind": "eval", "examples_seen": 8 * step, "eval_loss": 2 * error,
                "top1_error": error, "top5_error": error / 2}

    write_run(tmp_path / "sweep" / "w4", {**base, "status": "completed"},
              [train(10, 2.0), evaluation(10, 0.6), train(20, 1.5), train(30, 1.2), evaluation(30, 0.4)])
    write_run(tmp_path / "sweep" / "w8", {**base, "status": "failed", "error": "boom"}, [train(10, 2.1)])
    results = load_results(tmp_path)
    assert results.dropped == 1
    frame = results.frame
    assert frame["run_id"].tolist() == ["sweep/w4", "sweep/w4"]
    assert frame["compute"].tolist() == [50.0 * 80, 50.0 * 240]
    assert frame["is_final"].tolist() == [False, True]
    assert frame["train_loss"].tolist() == [2.0, 1.2]
    assert frame["top1_error"].tolist() == [0.6, 0.4]
    assert frame["lr"].tolist() == [0.01, 0.01] and frame["sweep"].tolist() == ["demo", "demo"]


def test_unreadable_sources_are_clear_errors(tmp_path, sweep):
    with pytest.raises(AnalysisError, match="does not exist"):
        load_results(tmp_path / "missing.csv")
    (tmp_path / "table.xlsx").write_text("x")
    with pytest.raises(AnalysisError, match=r"give a .csv or .parquet table"):
        load_results(tmp_path / "table.xlsx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="no run workdir"):
        load_results(tmp_path / "empty")
    sweep.assign(status="failed").to_csv(tmp_path / "failed.csv", index=False)
    with pytest.raises(AnalysisError, match=f"no rows to fit \\({len(sweep)} dropped"):
        load_results(tmp_path / "failed.csv")


def test_envelope_keeps_rows_that_beat_everything_before_them():
    frame = pd.DataFrame({"compute": [1.0, 2.0, 2.005, 3.0, 4.0, 5.0], "top1_error": [0.9, 0.8, 0.7, 0.75, 0.6, 0.65]})
    kept = select_points(frame, "envelope", "compute", "top1_error")
    # 2.0 and 2.005 tie (within 1%): only the better one is on the envelope
    assert kept["top1_error"].tolist() == [0.9, 0.7, 0.6]


def test_final_rows_come_from_is_final_or_else_the_last_step():
    frame = pd.DataFrame({"run_id": ["a", "a", "b"], "step": [1, 2, 1], "is_final": [False, True, True]})
    assert final_rows(frame)["step"].tolist() == [2, 1]
    assert sorted(final_rows(frame.drop(columns="is_final"))["step"].tolist()) == [1, 2]
    with pytest.raises(AnalysisError, match="unknown point set"):
        select_points(frame, "best", "step", "step")


def test_random_guess_level_follows_the_classes_and_the_column():
    frame = pd.DataFrame({"num_classes": [1000, 1000]})
    assert chance_level(frame, "top1_error") == pytest.approx(0.999)
    assert chance_level(frame, "top5_error") == pytest.approx(0.995)
    assert chance_level(frame, "eval_loss") == pytest.approx(np.log(1000))
    assert chance_level(frame, "wall_seconds") is None
    assert chance_level(frame.drop(columns="num_classes"), "top1_error") is None
    with pytest.raises(AnalysisError, match="mixes datasets"):
        chance_level(pd.DataFrame({"num_classes": [10, 1000]}), "top1_error")
