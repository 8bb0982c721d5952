"""The Slurm launcher on a real one-node cluster: one job array, requeue on preemption, failures recorded."""

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from helpers import tiny_args
from slurm_cluster import slurm_cluster

from scaling.sweep import slurm
from scaling.sweep.slurm import UnitJob, run_slurm
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import COMPILATION_CACHE
from scaling.workdir.records import read_result

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
TWO_DEVICES = "--xla_force_host_platform_device_count=2"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with slurm_cluster(tmp_path_factory.mktemp("slurm")):
        yield


def _point(run_id: str, data_dir: str, *overrides: str) -> SweepPoint:
    """A tiny ResNet on the digits; the config path is absolute, so jobs may run anywhere."""
    args = tiny_args("resnet", data_dir, *overrides)
    overrides = tuple(arg.removeprefix("--config.") for arg in args[2:])
    return SweepPoint("slurm-test", run_id, str(REPO / args[1]), overrides)


def _preempt_at_first_checkpoint(workdir: Path, array_index: int, signalled: list[str], stop: threading.Event) -> None:
    """Once the run has a complete checkpoint, send its job Slurm's preemption warning signal (USR2)."""
    while not stop.wait(0.2):
        if any(path.name.isdigit() for path in (workdir / "checkpoints").glob("*")):
            squeue = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True, check=True)
            job_id = next((job for job in squeue.stdout.split() if job.endswith(f"_{array_index}")), None)
            if job_id:
                subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
                signalled.append(job_id)
                return


def test_sweep_runs_as_one_array_resumes_after_preemption_and_is_not_resubmitted(
    cluster, digits_data_dir, tmp_path, monkeypatch
):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")  # the tests' shared cache; here the sweep's own is checked
    preempted = _point("preempted", digits_data_dir, "train.steps=300", "train.checkpoint_every_steps=10")
    short = [_point(f"lr{lr}", digits_data_dir, "train.steps=20", f"optim.lr={lr}") for lr in (1e-3, 3e-3)]
    points = [preempted, *short]
    signalled, finished, stop = [], [], threading.Event()
    preempter = threading.Thread(
        target=_preempt_at_first_checkpoint, args=(tmp_path / preempted.run_id, 0, signalled, stop)
    )
    preempter.start()
    try:
        statuses = run_slurm(points, tmp_path, cpus_per_task=1, env={"XLA_FLAGS": TWO_DEVICES},
                             on_finish=lambda point, status: finished.append(point.run_id))
    finally:
        stop.set()
        preempter.join()

    assert statuses == {point.run_id: "completed" for point in points}
    assert sorted(finished) == sorted(statuses)
    for point in points:  # XLA_FLAGS came from `env`, not from the tests' 8 devices
        assert read_result(tmp_path / point.run_id)["status"] == "completed"
        assert read_result(tmp_path / point.run_id)["num_devices"] == 2
    assert read_result(tmp_path / preempted.run_id)["step"] == 300
    assert any((tmp_path / COMPILATION_CACHE).iterdir())
    (folder,) = (tmp_path / ".submitit").iterdir()
    assert len({path.name.split("_")[0] for path in folder.glob("*_log.out")}) == 1  # one job array
    assert signalled, "the preempted run finished before its first checkpoint"
    log = (folder / f"{signalled[0]}_0_log.err").read_text()
    assert "preempted: checkpointed step" in log and "Calling checkpoint method" in log and "resuming at step" in log

    assert run_slurm(points, tmp_path, cpus_per_task=1) == {}
    assert list((tmp_path / ".submitit").iterdir()) == [folder]


def test_warning_signal_checkpoints_at_a_step_then_hands_over_to_submitits_requeue(
    digits_data_dir, tmp_path, monkeypatch
):
    """USR2 only asks training to stop; submitit's handler (checkpoint, requeue, exit) runs once the runs are saved."""
    point = _point("warned", digits_data_dir, "train.steps=20")
    handed_over = []
    train_unit = slurm.train_unit

    def submitits_handler(signum, frame):
        handed_over.append(read_result(tmp_path / point.run_id))

    def warned_before_the_first_step(*args):
        os.kill(os.getpid(), signal.SIGUSR2)
        return train_unit(*args)

    previous = signal.signal(signal.SIGUSR2, submitits_handler)
    try:
        monkeypatch.setattr(slurm, "train_unit", warned_before_the_first_step)
        assert UnitJob()([point], str(tmp_path), None) == {point.run_id: "preempted"}
        assert [(result["status"], result["step"]) for result in handed_over] == [("preempted", 1)]
        assert sorted(path.name for path in (tmp_path / point.run_id / "checkpoints").iterdir()) == ["1"]

        monkeypatch.setattr(slurm, "train_unit", train_unit)  # the requeued attempt resumes and finishes
        assert UnitJob()([point], str(tmp_path), None) == {point.run_id: "completed"}
        assert len(handed_over) == 1 and signal.getsignal(signal.SIGUSR2) is submitits_handler
    finally:
        signal.signal(signal.SIGUSR2, previous)


@pytest.mark.parametrize(("config", "env", "expected"), [
    ("configs/missing.py", {}, ("raised an exception", "configs/missing.py")),
    ("configs/resnet.py", {"PYTHONHOME": "/nonexistent"}, ("ended in state FAILED", "Fatal Python error")),
])
def test_job_that_ends_without_a_result_is_recorded_as_failed(cluster, tmp_path, config, env, expected):
    point = SweepPoint("slurm-test", "broken", str(REPO / config), ())

    assert run_slurm([point], tmp_path, cpus_per_task=1, env=env) == {point.run_id: "failed"}
    result = read_result(tmp_path / point.run_id)
    assert result["status"] == "failed" and all(text in result["error"] for text in expected)
