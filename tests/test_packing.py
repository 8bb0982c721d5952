"""Packing same-shape runs into one vmapped program: each member matches its solo run and has its own records."""

import numpy as np
import pytest
from helpers import assert_same_checkpoints, tiny_config

from scaling.errors import ConfigError
from scaling.sweep.spec import SweepPoint
from scaling.sweep.units import launch_units
from scaling.train import train_and_evaluate, train_packed
from scaling.workdir.records import read_result
from scaling.workdir.tracking import read_metrics

MEMBERS = [
    ("seed=0", "data.train_examples=200", "optim.lr=0.1"),
    ("seed=1", "data.train_examples=400", "optim.lr=0.03"),
]


def _config(data_dir, settings):
    return tiny_config("resnet", data_dir, "train.steps=3", "train.log_every_steps=1", "optim.name=sgd", *settings)


def _losses(workdir):
    return [line["train_loss"] for line in read_metrics(workdir) if line["kind"] == "train"]


def _evals(workdir):
    return [line for line in read_metrics(workdir) if line["kind"] == "eval"]


def test_packed_members_match_their_solo_runs(digits_data_dir, tmp_path):
    """Training and every intermediate evaluation: one eval line per member per eval step, as in its solo run."""
    configs = [_config(digits_data_dir, (*settings, "train.eval_every_steps=1")) for settings in MEMBERS]
    for index, config in enumerate(configs):
        train_and_evaluate(config, tmp_path / f"solo{index}")
    results = train_packed(configs, [tmp_path / "pack0", tmp_path / "pack1"])
    assert [r.status for r in results] == ["completed", "completed"]
    assert [r.train_examples for r in results] == [200, 400] and {r.pack_size for r in results} == {2}
    for index in range(2):
        packed, solo = tmp_path / f"pack{index}", tmp_path / f"solo{index}"
        np.testing.assert_allclose(_losses(packed), _losses(solo), rtol=1e-3)  # float round-off only
        assert_same_checkpoints(packed, solo, rtol=1e-3, atol=1e-5)
        assert [line["step"] for line in _evals(packed)] == [line["step"] for line in _evals(solo)] == [1, 2, 3]
        for packed_eval, solo_eval in zip(_evals(packed), _evals(solo)):
            assert packed_eval["top1_error"] == pytest.approx(solo_eval["top1_error"], abs=1 / 360 + 1e-9)
            assert packed_eval["eval_loss"] == pytest.approx(solo_eval["eval_loss"], rel=1e-3)
        assert read_result(packed)["final_eval"]["top1_error"] == pytest.approx(
            read_result(solo)["final_eval"]["top1_error"], abs=1 / 360 + 1e-9)
    assert _losses(tmp_path / "pack0") != _losses(tmp_path / "pack1")
    assert _evals(tmp_path / "pack0") != _evals(tmp_path / "pack1")


def test_runs_of_different_shapes_or_lengths_are_not_packed(digits_data_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"model.width differs"):
        train_packed([_config(digits_data_dir, ()), _config(digits_data_dir, ("model.width=8",))],
                     [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match="different lengths"):
        train_packed([_config(digits_data_dir, ()), _config(digits_data_dir, ("train.steps=7",))],
                     [tmp_path / "c", tmp_path / "d"])


def test_sweep_units_pack_only_compatible_points():
    def point(run_id, *overrides):
        return SweepPoint("s", run_id, "configs/resnet.py:width=4,depth=10",
                          ("train.epochs=None", "train.steps=5", *overrides))

    points = [point("a", "seed=1"), point("b", "model.width=8"), point("c", "seed=2"), point("d", "optim.lr=0.1"),
              point("e", "seed=3")]
    units = launch_units(points, pack_size=3)
    assert [[p.run_id for p in unit] for unit in units] == [["a", "c", "d"], ["b"], ["e"]]
    assert launch_units(points, pack_size=1) == [[p] for p in points]


def test_bench_pack_prints_the_ratio_against_training_one_after_another(digits_data_dir, capsys):
    """The runs of the first test's shapes and optimizer: its compiled programs come from the compilation cache."""
    from scaling.cli import main

    args = ["bench", "pack", "--config", "configs/resnet.py:width=4,depth=10", "--members", "2", "--steps", "4",
            f"--config.data.data_dir={digits_data_dir}", "--config.train.batch_size=32",
            "--config.train.eval_batch_size=64", "--config.optim.name=sgd"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 models x 4 steps of 32 examples" in out and "ratio packed/sequential:" in out
