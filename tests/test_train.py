"""Training end to end on the digits: loss falls, resume is exact, step 1 trains on the first batch. (Data
parallelism: tests/test_scale_out.py, tests/test_scale_out_resnet.py.)"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import assert_same_checkpoints, tiny_args, tiny_config

from scaling import train
from scaling.cli import PREEMPTED_EXIT, main
from scaling.data.pipeline import open_run_data
from scaling.errors import ConfigError
from scaling.plan import plan_run
from scaling.program.build import build_program
from scaling.program.steps import make_loss_fn
from scaling.train import train_and_evaluate
from scaling.workdir.records import read_result
from scaling.workdir.tracking import read_metrics

REPO = Path(__file__).resolve().parents[1]


def _train_losses(workdir: Path) -> list[float]:
    return [line["train_loss"] for line in read_metrics(workdir) if line["kind"] == "train"]


def _assert_trained_and_its_loss_fell(workdir: Path, steps: int, log_lines: int) -> None:
    """The run in `workdir` completed `steps` steps, logged `log_lines` train lines, its loss fell and its model
    beats chance."""
    result, losses = read_result(workdir), _train_losses(workdir)
    assert result["status"] == "completed" and result["step"] == steps
    assert len(losses) == log_lines and losses[-1] < 0.7 * losses[0]
    assert result["final_eval"]["top1_error"] < 0.8  # chance is 0.9
    assert result["params"] > 0 and result["flops_per_example"] > 0


def test_vit_trains_and_its_loss_falls(digits_data_dir, tmp_path):
    train_and_evaluate(tiny_config("vit", digits_data_dir, "train.steps=150", "train.log_every_steps=25",
                                   "optim.lr=1e-2"), tmp_path)
    _assert_trained_and_its_loss_fell(tmp_path, 150, 6)


def _complete_steps(workdir: Path) -> list[int]:
    folder = workdir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


RESUME_STEPS, EVERY = 120, 10  # twelve checkpoints, as many log lines
RESUME_ARGS = (f"train.steps={RESUME_STEPS}", f"train.checkpoint_every_steps={EVERY}", f"train.log_every_steps={EVERY}")


@pytest.fixture(scope="module")
def uninterrupted(digits_data_dir, tmp_path_factory) -> Path:
    """The reference run that interrupted runs must reproduce."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    assert main(["train", *tiny_args("resnet", digits_data_dir, *RESUME_ARGS), "--workdir", str(workdir)]) == 0
    return workdir


def test_resnet_trains_and_its_loss_falls(uninterrupted):
    _assert_trained_and_its_loss_fell(uninterrupted, RESUME_STEPS, RESUME_STEPS // EVERY)


def _start(args: list[str], workdir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "scaling.cli", "train", *args, "--workdir", str(workdir)]
    return subprocess.Popen(command, cwd=REPO, env=os.environ.copy(), stderr=subprocess.DEVNULL)


def _wait_for_checkpoint(process: subprocess.Popen, workdir: Path, step: int) -> None:
    deadline = time.monotonic() + 120
    while not any(done >= step for done in _complete_steps(workdir)) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.02)


def _assert_resumes_to_the_uninterrupted_run(args: list[str], workdir: Path, uninterrupted: Path) -> None:
    """Rerunning completes the run: each train line once, the losses, final evaluation and state of the
    uninterrupted run, exactly."""
    assert main(["train", *args, "--workdir", str(workdir)]) == 0
    assert [line["step"] for line in read_metrics(workdir) if line["kind"] == "train"] == list(
        range(EVERY, RESUME_STEPS + 1, EVERY))
    assert _train_losses(workdir) == _train_losses(uninterrupted)
    result = read_result(workdir)
    assert result["status"] == "completed" and result["final_eval"] == read_result(uninterrupted)["final_eval"]
    assert_same_checkpoints(workdir, uninterrupted)


def _kill_while_saving(process: subprocess.Popen, workdir: Path, step: int) -> None:
    """kill -9 the run while orbax writes `step`: its temporary folder exists, not yet renamed to `step`."""
    deadline = time.monotonic() + 120
    while not any((workdir / "checkpoints").glob(f"{step}.orbax-checkpoint-tmp*")):
        assert process.poll() is None and time.monotonic() < deadline, f"the save of step {step} was never seen"
        time.sleep(0.001)
    process.kill()
    process.wait()
    assert max(_complete_steps(workdir)) == step - EVERY, f"step {step} was saved before the kill landed"


def test_killed_run_resumed_by_rerunning_matches_uninterrupted(digits_data_dir, tmp_path, uninterrupted):
    """kill -9 while step 40 is being saved, rerun; then kill -9 at a random moment after a random later
    checkpoint (possibly mid-save), from a printed seed (KILL_SEED=<seed> replays it); the last rerun ends
    as the uninterrupted run."""
    args = tiny_args("resnet", digits_data_dir, *RESUME_ARGS)
    _kill_while_saving(_start(args, tmp_path), tmp_path, 40)
    seed = int(os.environ.get("KILL_SEED", random.randrange(2**32)))
    print(f"KILL_SEED={seed}")
    chance = random.Random(seed)
    kill_after = chance.randrange(50, 90, EVERY)  # at least 30 steps before the end
    process = _start(args, tmp_path)  # resumes from step 30, past the half-written step 40
    _wait_for_checkpoint(process, tmp_path, kill_after)
    time.sleep(chance.uniform(0, 0.2))
    process.kill()
    process.wait()
    killed_at = max(_complete_steps(tmp_path))
    assert kill_after <= killed_at < RESUME_STEPS, (
        f"kill came too late (latest checkpoint {killed_at}, aimed after {kill_after}; KILL_SEED={seed})"
    )
    _assert_resumes_to_the_uninterrupted_run(args, tmp_path, uninterrupted)


def test_sigterm_checkpoints_and_records_preempted_and_an_unreadable_checkpoint_is_set_aside(
        digits_data_dir, tmp_path, uninterrupted, capsys):
    """SIGTERM: a checkpoint where the run stopped and status `preempted`. Then that checkpoint is damaged and a
    save killed midway is left behind: the rerun sets the damaged step aside, resumes from the one before,
    and ends where the uninterrupted run ended."""
    args = tiny_args("resnet", digits_data_dir, *RESUME_ARGS)
    process = _start(args, tmp_path)
    _wait_for_checkpoint(process, tmp_path, 2 * EVERY)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == PREEMPTED_EXIT
    result = read_result(tmp_path)
    assert result["status"] == "preempted" and 2 * EVERY < result["step"] < RESUME_STEPS
    newest = max(_complete_steps(tmp_path))
    assert newest == result["step"]  # checkpointed where it stopped, off the schedule

    for path in (tmp_path / "checkpoints" / str(newest)).rglob("*"):
        if path.is_file():
            path.write_bytes(b"")  # a partial copy or a damaged disk: the step folder exists, its files are empty
    (tmp_path / "checkpoints" / f"{newest + EVERY}.orbax-checkpoint-tmp-1").mkdir()  # a save killed midway
    _assert_resumes_to_the_uninterrupted_run(args, tmp_path, uninterrupted)
    assert (tmp_path / "checkpoints" / f"{newest}.unreadable").is_dir()
    assert f"checkpoint step {newest}" in capsys.readouterr().err


def test_step_one_trains_on_the_first_batch_of_the_data_order(digits_data_dir, tmp_path):
    """The batch the step is compiled on is the batch step 1 trains on: its logged loss is the initial model's
    loss on batch 0 of the run's order, computed here apart from the loop. (The program of `uninterrupted`.)"""
    config = tiny_config("resnet", digits_data_dir, "train.steps=2", "train.log_every_steps=1")
    train_and_evaluate(config, tmp_path)
    plan = plan_run(config)
    data = open_run_data(config, plan.builder, plan.facts, plan.selection)
    images, labels = next(data.train.iterate(0))
    program = build_program(config, plan.model)
    state = program.initial_state(np.int32(config.seed))
    targets = jax.nn.one_hot(labels, plan.facts.num_classes)
    loss, _ = make_loss_fn(program.train_graph)(state["params"], state["rest"], images, targets,
                                                data.norm)
    assert _train_losses(tmp_path)[0] == pytest.approx(float(loss), rel=1e-4)


def test_wall_clock_checkpoints_follow_train_checkpoint_every_minutes(digits_data_dir, tmp_path, monkeypatch):
    """With a clock a minute later at each look (the loop's start, then once per step), a checkpoint every 2.5
    minutes falls at steps 3 (180 s) and 6 (360 s, 180 s after step 3's), then the final one at step 7."""
    seconds = iter(range(0, 6000, 60))
    monkeypatch.setattr(train, "checkpoint_clock", lambda: next(seconds))
    config = tiny_config("resnet", digits_data_dir, "train.steps=7", "train.checkpoint_every_steps=1000",
                         "train.checkpoint_every_minutes=2.5", "train.keep_checkpoints=10")
    assert train_and_evaluate(config, tmp_path / "run").status == "completed"
    saved = sorted(int(path.name) for path in (tmp_path / "run" / "checkpoints").iterdir() if path.name.isdigit())
    assert saved == [3, 6, 7]
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"train\.checkpoint_every_minutes=2\.5 needs a single process"):
        train_and_evaluate(config, tmp_path / "two")
