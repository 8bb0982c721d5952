"""The results table has one reader: `scaling sweep results` and loading a folder of workdirs give the same
rows, with cooldown branches marked and the minival's error, and the history overlay can draw that error."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_config

from analysis.cli import main as analysis_main
from analysis.errors import AnalysisError
from analysis.table.contract import RESULT_COLUMNS, Status
from analysis.table.load import load_results
from analysis.table.workdirs import read_workdirs
from scaling.cli import main
from scaling.train import train_and_evaluate

SETTINGS = ("train.steps=8", "train.eval_every_steps=4", "train.log_every_steps=2", "data.minival_per_class=2",
            "optim.schedule=wsd", "train.keep_checkpoint_fractions=(0.5,)")


@pytest.fixture(scope="module")
def root(digits_data_dir, tmp_path_factory) -> Path:
    """A wsd trunk and its cooldown branch from half-way, both with a minival."""
    root = tmp_path_factory.mktemp("runs")
    train_and_evaluate(tiny_config("resnet", digits_data_dir, *SETTINGS), root / "trunk")
    branch = tiny_config("resnet", digits_data_dir, *SETTINGS, "train.branch_from='trunk'", "train.branch_fraction=0.5")
    train_and_evaluate(branch, root / "trunk-cooldown0.5")
    return root


def test_the_sweep_table_and_the_loaded_folder_are_one_table(root):
    assert main(["sweep", "results", "--root", str(root)]) == 0
    folder = load_results(root).frame
    assert list(folder.columns) == list(RESULT_COLUMNS) and (folder["status"] == Status.COMPLETED).all()
    pd.testing.assert_frame_equal(load_results(root / "results.parquet").frame, folder)
    as_csv = pd.read_csv(io.StringIO(folder.to_csv(index=False)))
    pd.testing.assert_frame_equal(load_results(root / "results.csv").frame, as_csv)

    finals = folder[folder["is_final"]].set_index("run_id")
    assert finals.loc["trunk", "schedule"] == "wsd" and finals.loc["trunk-cooldown0.5", "schedule"] == "wsd+cooldown"
    assert (folder["sweep"] == root.name).all()  # no wandb group: the root folder's name
    minival = folder["minival_error"].to_numpy()
    assert np.isfinite(minival).all() and ((minival >= 0) & (minival <= 1)).all()


def test_an_empty_root_is_an_empty_sweep_table_but_nothing_to_load(tmp_path):
    assert main(["sweep", "results", "--root", str(tmp_path)]) == 0
    assert list(pd.read_csv(tmp_path / "results.csv").columns) == list(RESULT_COLUMNS)
    assert pd.read_parquet(tmp_path / "results.parquet").empty
    with pytest.raises(AnalysisError, match="no run workdir"):
        read_workdirs(tmp_path)


def test_the_history_overlay_draws_the_minival_error_of_a_folder(root, tmp_path, capsys):
    out = tmp_path / "figures"
    assert analysis_main(["history", "plot", "--out", str(out), "--runs", str(root), "--y", "minival_error",
                          "--law", "power", "--bootstrap", "0", "--formats", "png"]) == 0, capsys.readouterr().err
    assert (out / "top1_vs_compute.png").stat().st_size > 30_000
