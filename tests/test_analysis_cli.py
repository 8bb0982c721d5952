"""The analysis commands: registration, the fit command's output, and bad input as `error:` with status 2."""

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import LAW_NAMES, add_bench_fit, add_commands, main
from analysis.commands import DEFAULT_LAWS
from analysis.laws import LAWS
from analysis.synthetic import synthetic_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "results.csv"
    synthetic_sweep(budgets=(1e14, 1e15, 1e16)).to_csv(path, index=False)
    return path


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    add_commands(commands)
    add_bench_fit(commands, "bench-fit")
    return commands.choices


def test_the_command_line_knows_every_law():
    # m2, m3 and m4_learned (Alabdulmohsin et al.'s comparison) are fitted only when named
    assert tuple(LAWS) == LAW_NAMES and set(LAWS) - set(DEFAULT_LAWS) == {"m2", "m3", "m4_learned"}


def test_commands_are_registered_with_handlers_and_every_option_explained():
    parsers = subcommands()
    assert set(parsers) == {"fit", "predict", "plot", "report", "bench-fit", "history"}
    for name, parser in parsers.items():
        assert callable(parser.get_default("handler")), name
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help and len(action.help) > 15, (name, action.dest)


def test_fit_prints_parameters_with_intervals_and_the_backtest_and_writes_json(table, tmp_path, capsys):
    out = tmp_path / "fit.json"
    status = main(["fit", str(table), "--law", "power", "--law", "chinchilla", "--starts", "2", "--bootstrap", "8",
                   "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "power: E = a·x^(-b)" in printed and "95% interval" in printed and "backtest:" in printed
    record = json.loads(out.read_text())
    assert record["y"] == "top1_error" and record["dropped_rows"] == 0
    chinchilla = record["laws"][1]
    assert chinchilla["points"] == "final" and chinchilla["x"] == ["params", "examples_seen"]
    assert chinchilla["bootstrap"]["resamples"] == 8
    assert chinchilla["params"]["alpha"]["low"] < chinchilla["params"]["alpha"]["high"]
    assert {row["law"] for row in record["backtest"]["rows"]} == {"power", "chinchilla"}


def bad_table(tmp_path, table, column, row, value) -> Path:
    import pandas as pd

    frame = pd.read_csv(table)
    frame.loc[row, column] = value
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("column, value, message", [
    ("top1_error", np.nan, "'top1_error' has 1 NaN or infinite values"),
    ("top1_error", np.inf, "'top1_error' has 1 NaN or infinite values"),
    ("compute", 0.0, "'compute' has 1 zero or negative values"),
    ("top1_error", -0.1, "'top1_error' has 1 zero or negative values"),
])
def test_bad_values_are_errors_with_status_2(table, tmp_path, capsys, column, value, message):
    status = main(["fit", str(bad_table(tmp_path, table, column, 5, value)), "--law", "power", "--bootstrap", "0"])
    error = capsys.readouterr().err
    assert status == 2 and error.startswith("error: ") and message in error


@pytest.mark.parametrize("arguments, message", [
    (["--law", "saturating", "--points", "final"], "4 parameters but only 4 points; it needs at least 5"),
    (["--law", "power", "--y", "accuracy"], "needs column(s) ['accuracy']"),
    (["--law", "power", "--bound", "power.b=1"], "write LAW.PARAM=LOW:HIGH"),
    (["--law", "power", "--bound", "chinchilla.alpha=0:1"], "not being fitted"),
    (["--law", "power", "--bootstrap", "1"], "--bootstrap must be 0"),
    (["--law", "m4"], "needs a positive constant 'random_guess'"),
])
def test_bad_options_are_errors_with_status_2(table, tmp_path, capsys, arguments, message):
    import pandas as pd

    frame = pd.read_csv(table).drop(columns="num_classes")  # nothing tells the random-guess error
    frame[frame["run_id"].isin(frame["run_id"].unique()[:4])].to_csv(tmp_path / "four_runs.csv", index=False)
    status = main(["fit", str(tmp_path / "four_runs.csv"), "--json", str(tmp_path / "fit.json"), *arguments])
    assert status == 2 and message in capsys.readouterr().err


@pytest.fixture(scope="module")
def models(table, tmp_path_factory) -> Path:
    """Published-style results of two tasks: one row per model, no step, is_final or compute column."""
    import pandas as pd

    final = pd.read_csv(table).query("is_final")[["run_id", "params", "examples_seen", "top1_error"]]
    both = pd.concat([final.assign(task="a"), final.assign(task="b", top1_error=final["top1_error"] * 0.8)])
    path = tmp_path_factory.mktemp("models") / "models.csv"
    both.assign(run_id=both["task"] + "/" + both["run_id"]).to_csv(path, index=False)
    return path


def test_a_table_of_models_fits_with_default_options_and_where_picks_one_task(models, tmp_path, capsys):
    out = tmp_path / "fit.json"
    status = main(["fit", str(models), "--where", "task=b", "--starts", "2", "--bootstrap", "0", "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and "skipped the backtest" in printed and "--x" in printed
    assert "left out saturating, power, broken: the table has no compute column" in printed
    record = json.loads(out.read_text())
    (law,) = record["laws"]
    assert law["law"] == "chinchilla" and law["points"] == "final" and law["num_points"] == record["rows"] == 22
    assert record["where"] == ["task=b"] and record["unselected_rows"] == 22 and record["backtest"] is None


def test_every_law_is_checked_before_any_is_fitted(table, tmp_path, capsys):
    import pandas as pd

    frame = pd.read_csv(table)
    frame[frame["params"] == frame["params"].iloc[0]].to_csv(tmp_path / "one_size.csv", index=False)
    status = main(["fit", str(tmp_path / "one_size.csv"), "--law", "power", "--law", "chinchilla"])
    captured = capsys.readouterr()
    assert status == 2 and "power: E =" not in captured.out
    assert captured.err.count("\n") == 1 and "x column 'params' has a single value" in captured.err


def test_fit_without_backtest(table, tmp_path, capsys):
    out = tmp_path / "fit.json"
    status = main(["fit", str(table), "--law", "power", "--starts", "2", "--bootstrap", "0", "--no-backtest",
                   "--json", str(out)])
    assert status == 0 and "backtest:" not in capsys.readouterr().out
    assert json.loads(out.read_text())["backtest"] is None


def test_predict_prints_intervals_and_verifies_held_out_runs(table, tmp_path, capsys):
    out = tmp_path / "predict.json"
    status = main(["predict", str(table), "--law", "power", "--at", "compute=1e17", "--verify-below",
                   "compute=3e15", "--starts", "2", "--bootstrap", "8", "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and "95% interval of one run" in printed and "coverage:" in printed
    record = json.loads(out.read_text())
    (prediction,) = record["predictions"]["power"]
    assert prediction["at"] == {"compute": 1e17} and prediction["low"] < prediction["value"] < prediction["high"]
    checked = record["verifications"]["power"]
    assert checked["column"] == "compute" and all(row["position"] >= 3e15 for row in checked["rows"])
    assert checked["coverage"] == sum(row["inside"] for row in checked["rows"]) / len(checked["rows"])


@pytest.mark.parametrize("arguments, message", [
    (["--law", "power", "--at", "compute"], "bad --at 'compute': write --at compute=VALUE"),
    (["--law", "power", "--at", "flops=1e18"], "power takes compute (or x), not 'flops'"),
    (["--law", "chinchilla", "--at", "compute=1e18"], "chinchilla takes params, examples_seen"),
    (["--law", "chinchilla", "--at", "params=1e8"], "chinchilla needs 2 input(s)"),
    (["--law", "power", "--verify-below", "compute"], "bad --verify-below 'compute'"),
    (["--law", "power", "--verify-below", "flops=1e15"], "needs column(s) ['flops']"),
    (["--law", "power", "--verify-below", "compute=1e30"], "leaves no row at or above it"),
    (["--at", "compute=1e18"], "predict needs the law to predict with: --law LAW"),
    (["--law", "power"], "predict needs --at COLUMN=VALUE"),
    (["--law", "power", "--at", "compute=1e18", "--bootstrap", "0"], "give --bootstrap N with N >= 2"),
])
def test_bad_predict_input_is_one_error_line_with_status_2(table, capsys, arguments, message):
    status = main(["predict", str(table), *arguments])
    error = capsys.readouterr().err
    assert status == 2 and error.startswith("error: ") and error.count("\n") == 1 and message in error


def test_report_verify_below_that_leaves_no_held_out_row_is_refused_before_any_fit(table, tmp_path, capsys):
    status = main(["report", str(table), "--out", str(tmp_path / "report"), "--verify-below", "compute=1e30"])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and "leaves no row at or above it" in error
    assert not (tmp_path / "report").exists()


def test_plot_on_a_single_model_size_draws_what_it_can_and_warns_about_the_rest(table, tmp_path, capsys):
    import pandas as pd

    frame = pd.read_csv(table)
    frame[frame["params"] == frame["params"].iloc[0]].to_csv(tmp_path / "one.csv", index=False)
    status = main(["plot", str(tmp_path / "one.csv"), "--out", str(tmp_path / "figures"), "--starts", "2",
                   "--bootstrap", "0", "--formats", "png"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "skipped the envelope frontier: the envelope (Hoffmann approach 1) needs runs of at least 3" in printed
    assert "skipped figure isoflop" in printed
    assert "skipped law chinchilla" in printed and "single value" in printed
    assert (tmp_path / "figures" / "error_vs_compute.png").exists()


def test_the_terminal_flags_a_degenerate_frontier(capsys):
    from analysis.bootstrap import Estimate
    from analysis.commands import _print_frontiers
    from analysis.degenerate import allocation_problems
    from analysis.frontier import Allocation

    compute = np.geomspace(1e13, 1e15, 6)  # the case: N_opt read off two distinct model sizes
    n_opt = np.array([1e5, 1e5, 1e5, 1e6, 1e6, 1e6])
    envelope = Allocation("envelope (Hoffmann approach 1)", compute, n_opt, compute / (6 * n_opt),
                          Estimate(1.039, 0.0, 1.066), Estimate(-0.039, -0.066, 0.0), 1.0, 1.0)
    study = argparse.Namespace(envelope=argparse.Namespace(allocation=envelope), isoflop=None, parametric=None,
                               problems={envelope.method: allocation_problems(envelope)})
    _print_frontiers(study)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("envelope (Hoffmann approach 1): N_opt ∝ C^1.04 [0, 1.07]")
    assert "DEGENERATE: " in line and "N_opt from 2 distinct model sizes (< 3)" in line


def test_module_runs_on_its_own():
    result = subprocess.run([sys.executable, "-m", "analysis.cli", "fit", "--help"], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert "--bootstrap N" in result.stdout and "--law LAW" in result.stdout


def test_analysis_never_imports_scaling():
    for path in (ROOT / "analysis").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(name == "scaling" or name.startswith("scaling.") for name in names), path
