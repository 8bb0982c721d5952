"""Training end to end on the digits: loss falls, data parallelism is exact, resume is exact."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_checkpoints, tiny_args, tiny_config
from scaling.cli import main
from scaling.tracking import read_metrics
from scaling.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]


def _train_losses(workdir: Path) -> list[float]:
    return [line["train_loss"] for line in read_metrics(workdir) if line["kind"] == "train"]


@pytest.mark.parametrize("family", ["resnet", "vit"])
def test_each_family_trains_and_its_loss_falls(family, digits_data_dir, tmp_path):
    config = tiny_config(family, digits_data_dir, "train.steps=150", "train.log_every_steps=25", "optim.lr=1e-2")
    result = train_and_evaluate(config, tmp_path)
    losses = _train_losses(tmp_path)
    assert result.status == "completed" and result.step == 150
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0]
    assert result.final_eval["top1_error"] < 0.8  # chance is 0.9
    assert result.params > 0 and result.flops_per_example > 0


def test_data_parallel_step_matches_single_device(digits_data_dir, tmp_path):
    """Same global batch on 1 and 8 devices; sgd, because Adam magnifies float round-off in tiny gradients."""
    for devices in (1, 8):
        config = tiny_config("resnet", digits_data_dir, "train.steps=4", "train.log_every_steps=1", f"mesh.data={devices}",
                             "optim.name=sgd", "optim.lr=0.1")
        train_and_evaluate(config, tmp_path / str(devices))
    np.testing.assert_allclose(_train_losses(tmp_path / "8"), _train_losses(tmp_path / "1"), rtol=1e-5)
    assert_same_checkpoints(tmp_path / "8", tmp_path / "1", rtol=1e-3, atol=5e-5)  # reduction order differs


def _complete_steps(workdir: Path) -> list[int]:
    folder = workdir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def test_killed_run_resumed_by_rerunning_matches_uninterrupted(digits_data_dir, tmp_path):
    args = tiny_args("resnet", digits_data_dir, "train.steps=300", "train.checkpoint_every_steps=25", "train.log_every_steps=25")
    assert main(["train", *args, "--workdir", str(tmp_path / "whole")]) == 0

    interrupted = tmp_path / "interrupted"
    command = [sys.executable, "-m", "scaling.cli", "train", *args, "--workdir", str(interrupted)]
    process = subprocess.Popen(command, cwd=REPO, env=os.environ.copy(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(step >= 50 for step in _complete_steps(interrupted)) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.kill()
    process.wait()
    killed_at = max(_complete_steps(interrupted))
    assert 50 <= killed_at < 300, f"kill came too late (latest checkpoint {killed_at})"

    assert main(["train", *args, "--workdir", str(interrupted)]) == 0
    metrics = read_metrics(interrupted)
    assert [line["step"] for line in metrics if line["kind"] == "train"] == list(range(25, 301, 25))
    assert_same_checkpoints(interrupted, tmp_path / "whole")
