"""Records a researcher can trust: broken run folders and tables, injected for real, are skipped or refused by
name, and never lose or repeat the rows of the good runs."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.table.load import load_results
from analysis.table.workdirs import foreign_runs, read_metrics, read_workdirs
from scaling.cli import main

FLOPS = (1e6, 4e6, 1.6e7, 6.4e7)  # flops_per_example of the good runs sweep/n0..n3
ERRORS = ((0.8, 0.7), (0.6, 0.5), (0.45, 0.4), (0.35, 0.3))  # their top-1 errors at steps 10 and 20
GOOD_ROWS = sorted((f"sweep/n{i}", step) for i in range(4) for step in (10, 20))


def evaluation(step: int, error: float) -> dict:
    return {"step": step, "kind": "eval", "examples_seen": 8 * step, "eval_loss": 2 * error, "top1_error": error,
            "top5_error": error / 2}


def write_run(workdir: Path, flops: float = 1e6, errors: tuple[float, ...] = (0.8, 0.7)) -> Path:
    """A finished run's three files, as training writes them (one eval line per 10 steps)."""
    workdir.mkdir(parents=True)
    result = {"family": "resnet", "params": 1000, "flops_per_example": flops, "num_classes": 10, "batch_size": 8,
              "status": "completed"}
    (workdir / "result.json").write_text(json.dumps(result))
    (workdir / "config.json").write_text(json.dumps({"seed": 0, "optim": {"lr": 0.1, "schedule": "cosine"}}))
    lines = [evaluation(10 * (index + 1), error) for index, error in enumerate(errors)]
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return workdir


def cut(path: Path, keep: int) -> None:
    """Truncate `path` to its first `keep` bytes, as a kill mid-write leaves it."""
    os.truncate(path, keep)


def break_result_empty(workdir: Path) -> str:
    cut(workdir / "result.json", 0)
    return "result.json is empty"


def break_result_torn(workdir: Path) -> str:
    cut(workdir / "result.json", (workdir / "result.json").stat().st_size // 2)
    return "result.json is not valid JSON"


def break_result_list(workdir: Path) -> str:
    (workdir / "result.json").write_text("[1, 2]")
    return "result.json holds a JSON list, not an object"


def break_result_status(workdir: Path) -> str:
    result = json.loads((workdir / "result.json").read_text())
    (workdir / "result.json").write_text(json.dumps({key: value for key, value in result.items() if key != "status"}))
    return "result.json has no status"


def break_config_empty(workdir: Path) -> str:
    cut(workdir / "config.json", 0)
    return "config.json is empty"


def break_config_bytes(workdir: Path) -> str:
    with (workdir / "config.json").open("r+b") as file:  # flip the opening brace
        file.write(b"\xff")
    return "config.json is not valid JSON"


def break_metrics_middle(workdir: Path) -> str:
    path = workdir / "metrics.jsonl"
    with path.open("r+b") as file:  # line 1 of 2 loses its opening brace
        file.write(b"#")
    return "metrics.jsonl line 1 is not a JSON object"


BREAKS = (break_result_empty, break_result_torn, break_result_list, break_result_status, break_config_empty,
          break_config_bytes, break_metrics_middle)


def sweep_root(root: Path) -> dict[str, str]:
    """Four good runs under root/sweep and one broken run per kind of damage under root/bad; for each broken run
    id, its damaged file and what is wrong with it."""
    for index, (flops, errors) in enumerate(zip(FLOPS, ERRORS)):
        write_run(root / "sweep" / f"n{index}", flops, errors)
    broken = {}
    for damage in BREAKS:
        workdir = write_run(root / "bad" / damage.__name__.removeprefix("break_"))
        problem = damage(workdir)
        broken[workdir.relative_to(root).as_posix()] = f"{workdir / problem.split()[0]} {problem.partition(' ')[2]}"
    return broken


def rows(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted(zip(frame["run_id"], frame["step"].astype(int)))


def test_unreadable_runs_are_skipped_by_name_and_the_rest_make_the_table(tmp_path, capsys):
    broken = sweep_root(tmp_path)
    frame = read_workdirs(tmp_path)
    assert rows(frame) == GOOD_ROWS  # every good row once, nothing of a broken run
    assert frame.set_index(["run_id", "step"]).loc[("sweep/n2", 20), "top1_error"] == 0.4
    assert frame.set_index(["run_id", "step"]).loc[("sweep/n3", 10), "compute"] == 6.4e7 * 80
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == len(broken) == len(frame.attrs["unreadable"])
    for (run_id, problem), warning, listed in zip(sorted(broken.items()), warnings, frame.attrs["unreadable"]):
        assert warning == f"warning: {listed}"
        assert warning.startswith(f"warning: skipped run {run_id}: {problem}"), (warning, problem)
        assert warning.endswith("rerun that point (scaling sweep run) or remove the run's folder")
    assert frame.attrs["torn"] == [] and frame.attrs["foreign"] == []


def test_a_folder_with_broken_runs_fits_its_good_rows_and_writes_nothing_unasked(tmp_path, capsys, monkeypatch):
    broken = sweep_root(tmp_path / "runs")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    status = main(["fit", str(tmp_path / "runs"), "--law", "power", "--bootstrap", "0", "--starts", "2"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"{tmp_path / 'runs'}: {len(GOOD_ROWS)} usable rows, 0 dropped" in out
    skipped = [line for line in out.splitlines() if line.startswith("warning: skipped run ")]
    assert [line.split()[3].rstrip(":") for line in skipped] == sorted(broken)
    assert "fitted to 8 envelope points" in out and "Traceback" not in out + err
    assert list(cwd.iterdir()) == []  # no fit.json, no cache: nothing unless --json is given


@pytest.mark.parametrize("tear", ["cut mid-line", "garbage last line", "no final newline"])
def test_a_torn_last_metrics_line_is_dropped_and_said(tmp_path, tear):
    workdir = write_run(tmp_path / "run", errors=(0.8, 0.7, 0.6))
    path = workdir / "metrics.jsonl"
    text = path.read_text()
    if tear == "cut mid-line":
        cut(path, len(text) - 20)
    elif tear == "garbage last line":
        path.write_text(text.rsplit("\n", 2)[0] + "\n}{\n")
    else:
        path.write_text(text.rstrip("\n"))  # the last line's newline was never written
    said = []
    lines = read_metrics(workdir, on_torn=said.append)
    assert lines == [evaluation(10, 0.8), evaluation(20, 0.7)]
    assert len(said) == 1 and f"dropped the torn last line 3 of {path}" in said[0]
    frame = read_workdirs(tmp_path, on_warning=lambda message: None)
    assert rows(frame) == [("run", 10), ("run", 20)] and frame["top1_error"].tolist() == [0.8, 0.7]
    assert frame.attrs["torn"] == said and frame.attrs["unreadable"] == []


def test_a_bad_metrics_line_before_the_last_is_an_error_naming_it(tmp_path):
    workdir = write_run(tmp_path / "run", errors=(0.8, 0.7, 0.6))
    path = workdir / "metrics.jsonl"
    first, second, third = path.read_text().splitlines()
    path.write_text(f"{first}\n{second[:9]}\n{third}\n")
    with pytest.raises(AnalysisError, match=f"{path} line 2 is not a JSON object"):
        read_metrics(workdir)


def test_a_missing_root_is_an_error_even_when_empty_is_allowed(tmp_path):
    with pytest.raises(AnalysisError, match=f"{tmp_path / 'nowhere'} does not exist"):
        read_workdirs(tmp_path / "nowhere", allow_empty=True)
    assert read_workdirs(tmp_path, allow_empty=True).empty


def test_run_ids_keep_exactly_the_sweeps_runs_and_list_the_others(tmp_path, capsys):
    sweep_root(tmp_path)
    points = ["sweep/n0", "sweep/n3", "sweep/never-ran"]
    frame = read_workdirs(tmp_path, run_ids=points)
    assert rows(frame) == [("sweep/n0", 10), ("sweep/n0", 20), ("sweep/n3", 10), ("sweep/n3", 20)]
    others = ["bad/" + damage.__name__.removeprefix("break_") for damage in BREAKS] + ["sweep/n1", "sweep/n2"]
    assert frame.attrs["foreign"] == sorted(others) == foreign_runs(tmp_path, points)
    assert frame.attrs["unreadable"] == [] and capsys.readouterr().err == ""  # the broken runs are not read


def fit(tmp_path: Path, capsys, table: Path, *options: str) -> tuple[int, str, str]:
    status = main(["fit", str(table), "--law", "power", "--bootstrap", "0", "--starts", "2", *options])
    out, err = capsys.readouterr()
    return status, out, err


def one_error(err: str) -> str:
    """The single `error:` line a refused command prints (no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def small_table(count: int = 8) -> pd.DataFrame:
    compute = np.geomspace(1e12, 1e16, count)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(count)], "step": 100, "compute": compute,
                         "top1_error": 0.1 + 30 * compute**-0.15, "status": "completed"})


def test_error_values_above_1_are_refused_with_a_row(tmp_path, capsys):
    table = small_table()
    table.loc[3, "top1_error"], table.loc[5, "top1_error"] = 1.7, 2.5
    table.to_csv(tmp_path / "t.csv", index=False)
    status, out, err = fit(tmp_path, capsys, tmp_path / "t.csv")
    line = one_error(err)
    assert status == 2 and out == ""
    assert "column 'top1_error'" in line and "2 of its rows exceed 1" in line
    assert "(e.g. run_id=r3, step=100, top1_error=1.7)" in line
    percent = small_table().assign(top1_error=lambda frame: 100 * frame["top1_error"])
    percent.to_csv(tmp_path / "percent.csv", index=False)
    _, _, err = fit(tmp_path, capsys, tmp_path / "percent.csv")
    assert "look like percentages: divide the column by 100" in one_error(err)


def test_repeated_rows_are_a_warning_kept_with_the_results(tmp_path):
    table = small_table()
    pd.concat([table, table.iloc[[1, 4, 6]], table.iloc[[1, 4, 6]]]).to_csv(tmp_path / "t.csv", index=False)
    results = load_results(tmp_path / "t.csv")
    assert len(results.frame) == 8 + 6  # kept as they are: nothing lost, nothing added
    assert sorted(results.frame["run_id"]) == sorted([f"r{i}" for i in range(8)] + ["r1", "r4", "r6"] * 2)
    (warning,) = results.warnings
    assert warning.startswith("6 rows repeat another row in every column (3 distinct rows, of runs r1, r4, r6)")
    assert "weights the fit" in warning and "drop_duplicates()" in warning
    assert load_results(tmp_path / "t.csv").with_zero_errors("top1_error").warnings == (warning,)
    table.to_csv(tmp_path / "once.csv", index=False)
    assert load_results(tmp_path / "once.csv").warnings == ()


@pytest.mark.parametrize("damage", ["empty", "header only", "CSV named .parquet", "Parquet named .csv",
                                    "cut Parquet"])
def test_tables_pandas_cannot_read_are_one_error_line(tmp_path, capsys, damage):
    table = small_table()
    if damage == "empty":
        path = tmp_path / "t.csv"
        path.write_bytes(b"")
        expected = f"{path} is empty (0 bytes)"
    elif damage == "header only":
        path = tmp_path / "t.csv"
        table.iloc[:0].to_csv(path, index=False)
        expected = f"{path} has no rows (a header of 5 columns only)"
    elif damage == "CSV named .parquet":
        path = tmp_path / "t.parquet"
        table.to_csv(path, index=False)
        expected = f"cannot read {path} as Parquet"
    elif damage == "Parquet named .csv":
        path = tmp_path / "t.csv"
        table.to_parquet(path, index=False)
        expected = f"cannot read {path} as CSV"
    else:
        path = tmp_path / "t.parquet"
        table.to_parquet(path, index=False)
        cut(path, path.stat().st_size // 2)
        expected = f"cannot read {path} as Parquet"
    status, out, err = fit(tmp_path, capsys, path)
    assert status == 2 and expected in one_error(err) and out == ""
    hints = {"CSV named .parquet": "if it is CSV, name it .csv", "Parquet named .csv": "name it .parquet"}
    assert hints.get(damage, "") in err


def test_a_cutoff_below_the_data_names_the_smallest_compute(tmp_path, capsys):
    small_table().to_csv(tmp_path / "t.csv", index=False)
    status, out, err = fit(tmp_path, capsys, tmp_path / "t.csv", "--cutoff", "1e5")
    line = one_error(err)
    assert status == 2 and "--cutoff 1e+05 lies below every compute in the table (smallest 1e+12" in line
    assert "e.g. 1e+15" in line  # the default: 3/4 of the way from 1e12 to 1e16 in log compute
    assert "fitted to" not in out  # refused before any fit


@pytest.mark.parametrize("command,option,target,expected", [
    ("fit", "--json", "file/fit.json", "file is a file, not a folder"),
    ("fit", "--json", "folder", "is a folder; give the path of a file"),
    ("plot", "--out", "file/figures", "file is a file, not a folder"),
    ("report", "--out", "file", "is a file; give the path of a folder"),
])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys, command, option, target, expected):
    small_table().to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    status = main([command, str(tmp_path / "t.csv"), "--law", "power", "--bootstrap", "0", option,
                   str(tmp_path / target)])
    out, err = capsys.readouterr()
    line = one_error(err)
    assert status == 2 and out == "" and line.startswith(f"error: {option} {tmp_path / target}") and expected in line
    assert (tmp_path / "file").read_text() == "not a folder" and list((tmp_path / "folder").iterdir()) == []
