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
    assert tuple(LAWS) == LAW_NAMES and set(DEFAULT_LAWS) == set(LAWS)


def test_commands_are_registered_with_handlers_and_every_option_explained():
    parsers = subcommands()
    assert set(parsers) == {"fit", "plot", "report", "bench-fit", "history"}
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
