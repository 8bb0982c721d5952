"""`scaling history plot|fit|compare`: the figures (with a sweep overlaid), the fitted numbers as text and
JSON, reproduced against published errors from run folders, and bad input as `error:` with status 2."""

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import add_commands, main
from analysis.history.plots import compute_figure
from analysis.history.table import HISTORY_TABLE, load_history
from analysis.synthetic import synthetic_sweep

ALEXNET = {"name": "AlexNet (Krizhevsky et al. 2012)", "top1_error": 0.407, "top5_error": 0.182,
           "source": "Krizhevsky et al. 2012, Table 2", "year": 2012}


@pytest.fixture(scope="module")
def sweep_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("history") / "results.csv"
    synthetic_sweep(budgets=(1e15, 1e16, 1e17)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def figures(tmp_path_factory, sweep_table) -> Path:
    """The three figures, drawn once with the sweep overlaid."""
    out = tmp_path_factory.mktemp("figures")
    assert main(["history", "plot", "--out", str(out), "--runs", str(sweep_table), "--law", "power", "--bootstrap", "0",
                 "--formats", "png"]) == 0
    return out


def write_run(folder: Path, config: dict, result: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "result.json").write_text(json.dumps(result))


@pytest.fixture
def runs(tmp_path) -> Path:
    """A history reproduction with a reference, and an ordinary sweep run without one."""
    write_run(tmp_path / "history" / "alexnet",
              {"data": {"name": "imagenet2012", "resolution": 224}, "train": {"epochs": 90.0}, "reference": ALEXNET},
              {"status": "completed", "resolution": 224, "train_examples": 1281167, "examples_seen": 115305030,
               "step": 450000, "compute": 5.1e17, "final_eval": {"top1_error": 0.432, "top5_error": 0.201}})
    write_run(tmp_path / "sweep" / "resnet_w8",
              {"data": {"name": "digits"}, "train": {"epochs": 15.0}},
              {"status": "completed", "compute": 1e12, "final_eval": {"top1_error": 0.05, "top5_error": 0.0}})
    return tmp_path


def test_history_is_a_command_group_whose_commands_explain_themselves():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    add_commands(commands)
    group = commands.choices["history"]
    subcommands = next(action for action in group._actions if isinstance(action, argparse._SubParsersAction))
    assert set(subcommands.choices) == {"plot", "fit", "compare"}
    for name, sub in subcommands.choices.items():
        assert callable(sub.get_default("handler")) and "examples:" in sub.epilog, name
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help and len(action.help) > 15, (name, action.dest)


def test_plot_draws_the_three_figures(figures):
    for name in ("ilsvrc_top5", "top1_by_date", "top1_vs_compute"):
        assert (figures / f"{name}.png").stat().st_size > 30_000, name


def test_the_overlay_draws_the_runs_and_their_frontier_on_the_compute_axes(sweep_table):
    from analysis.history.commands import _overlay

    overlay, _warnings = _overlay(argparse.Namespace(runs=str(sweep_table), columns=[], y="top1_error",
                                                    law="power", bootstrap=0, seed=0))
    assert overlay.frontier is not None and overlay.frontier.fit.params["b"] > 0
    ax = compute_figure(load_history(), overlay=overlay).axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("your runs") for label in labels) and any(label.startswith("power") for label in labels)
    assert ax.get_xlim()[0] < overlay.frame["compute"].min() < 1e16  # the axes reach down to the sweep


def test_fit_prints_the_trends_and_writes_them_as_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main(["history", "fit", "--bootstrap", "20", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "each halving of the error costs" in printed and "Erdil & Besiroglu 2022" in printed
    record = json.loads(out.read_text())
    trends = {(trend["trend"], trend["group"]): trend for trend in record["trends"]}
    assert set(trends) == {("time", "ilsvrc-winners"), ("time", "imagenet-1k"), ("time", "extra-data"),
                           ("compute", "imagenet-1k"), ("compute", "extra-data"), ("progress", "imagenet-1k")}
    cost = trends["compute", "imagenet-1k"]["headline"]["compute_per_error_halving"]
    assert 10 < cost["value"] < 1e4 and cost["low"] < cost["value"]
    assert "CLIP ViT-L/14@336" not in trends["compute", "extra-data"]["models"]
    assert record["erdil_besiroglu_2022"]["halving_months"] == 9


def test_fit_leaves_out_a_trend_the_table_cannot_support_and_says_why(tmp_path, capsys):
    frame = pd.read_csv(HISTORY_TABLE, keep_default_na=False, na_values=[""])
    few = frame[(frame["extra_data"] != "none") | frame["model"].isin(["AlexNet", "VGG-16", "ResNet-50"])]
    few.to_csv(tmp_path / "few.csv", index=False)
    assert main(["history", "fit", "--table", str(tmp_path / "few.csv"), "--bootstrap", "0"]) == 0
    printed = capsys.readouterr().out
    assert "warning: skipped the trend of algorithmic progress" in printed and "needs at least 4" in printed
    assert "with extra data: top1_error against training compute" in printed


def test_compare_prints_reproduced_against_published_for_runs_with_a_reference(runs, tmp_path, capsys):
    assert main(["history", "compare", "--runs", str(runs), "--plot", str(tmp_path / "plot"), "--formats", "png"]) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("AlexNet"))
    for cell in ("completed", "imagenet2012", "224", "90", "450000", "43.20", "40.70", "+2.50", "20.10", "18.20",
                 "+1.90", "history/alexnet"):
        assert cell in line.split(), cell
    assert "resnet_w8" not in printed and "digits" not in printed
    assert (tmp_path / "plot" / "reproductions_vs_compute.png").stat().st_size > 30_000


@pytest.mark.parametrize("arguments, message", [
    (["plot", "--runs", "{missing}"], "does not exist"),
    (["plot", "--runs", "{no_compute}"], "needs column(s) ['compute']"),
    (["plot", "--runs", "{sweep}", "--y", "top1_err"], "needs column(s) ['top1_err']"),
    (["plot", "--runs", "{sweep}", "--y", "flops_per_example"], "errors as fractions in [0, 1]"),
    (["plot", "--table", "{missing}"], "history table"),
    (["fit", "--bootstrap", "1"], "--bootstrap must be 0"),
    (["compare", "--runs", "{empty}"], "holds no run folder"),
    (["compare", "--runs", "{unreferenced}"], "has a `reference` object"),
    (["compare", "--runs", "{percent}"], "reference.top1_error = 37.5 is not an error fraction"),
])
def test_bad_input_is_an_error_naming_the_problem_with_status_2(tmp_path, sweep_table, capsys, arguments, message):
    pd.read_csv(sweep_table).drop(columns=["compute"]).to_csv(tmp_path / "no_compute.csv", index=False)
    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "unreferenced" / "run", {"data": {"name": "digits"}}, {"status": "completed"})
    write_run(tmp_path / "percent" / "run", {"reference": {**ALEXNET, "top1_error": 37.5}}, {"status": "completed"})
    places = {"missing": tmp_path / "missing.csv", "no_compute": tmp_path / "no_compute.csv", "sweep": sweep_table,
              "empty": tmp_path / "empty", "unreferenced": tmp_path / "unreferenced", "percent": tmp_path / "percent"}
    filled = [argument.format(**places) for argument in arguments]
    out = ["--out", str(tmp_path / "out")] if arguments[0] == "plot" else []
    assert main(["history", *filled, *out]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error
