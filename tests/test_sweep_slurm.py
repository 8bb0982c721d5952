"""The Slurm launcher on a real one-node cluster: one job array, requeue on preemption, failures recorded; detached
submission with the cooldown array after its trunks; a run of two tasks joined as one jax.distributed program."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import submitit
from helpers import tiny_args
from slurm_cluster import add_account, slurm_cluster

from scaling.cli import main
from scaling.config.loading import parse_value
from scaling.sweep import slurm
from scaling.sweep.slurm import UnitJob, make_executor, run_slurm
from scaling.sweep.slurm_options import SlurmOptions
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import COMPILATION_CACHE
from scaling.workdir.records import read_result

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
TWO_DEVICES = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"  # fast compiles


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
        statuses = run_slurm(points, tmp_path, SlurmOptions(cpus_per_task=1, env={"XLA_FLAGS": TWO_DEVICES}),
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

    assert run_slurm(points, tmp_path, SlurmOptions(cpus_per_task=1)) == {}
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

    assert run_slurm([point], tmp_path, SlurmOptions(cpus_per_task=1, env=env)) == {point.run_id: "failed"}
    result = read_result(tmp_path / point.run_id)
    assert result["status"] == "failed" and all(text in result["error"] for text in expected)


def _cooldown_sweep(path: Path, data_dir: str) -> Path:
    """A sweep file of one tiny trunk and its cooldown branch from half-way."""
    args = tiny_args("resnet", data_dir, "train.steps=10")
    overrides = dict(arg.removeprefix("--config.").split("=", 1) for arg in args[2:])
    path.write_text(f"CONFIG = {str(REPO / args[1])!r}\n"
                    f"OVERRIDES = {({key: parse_value(text) for key, text in overrides.items()})!r}\n"
                    "COOLDOWN_FRACTIONS = (0.5,)\n"
                    "def get_grid():\n    return [{'seed': 0}]\n")
    return path


def _status_lines(root: Path, capsys: pytest.CaptureFixture) -> list[str]:
    assert main(["sweep", "status", "--root", str(root)]) == 0
    return [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]


def test_detached_sweep_passes_its_options_and_starts_the_cooldown_array_after_the_trunk(
    cluster, digits_data_dir, tmp_path, capsys
):
    add_account("vision", "low")
    path, root = _cooldown_sweep(tmp_path / "cooldown.py", digits_data_dir), tmp_path / "root"
    assert main(["sweep", "run", str(path), "--root", str(root), "--launcher", "slurm", "--account", "vision",
                 "--qos", "low", "--cpus-per-task", "1", "--slurm-param", "comment=scaling-test",
                 "--env", f"XLA_FLAGS={TWO_DEVICES}", "--detach"]) == 0
    jobs = json.loads((root / ".slurm" / "jobs.json").read_text())["jobs"]
    (trunk_id, trunk), (branch_id, branch) = sorted((run_id, job["job"]) for run_id, job in jobs.items())
    assert branch_id == f"{trunk_id}-cooldown0.5"
    out = capsys.readouterr().out
    assert f"submitted Slurm job {trunk}: 1 run\n" in out
    assert f"submitted Slurm job {branch}: 1 run, starting once job {trunk} completed (afterok)\n" in out
    for job in (trunk, branch):
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, check=True).stdout
        assert {"Account=vision", "QOS=low", "Comment=scaling-test"} <= set(shown.split()), shown
    assert f"Dependency=afterok:{trunk}(unfulfilled)" in shown

    lines = _status_lines(root, capsys)  # the trunk takes seconds to start Python: the branch still waits
    assert lines[0] == "2 pending"
    assert f"pending {branch_id} {branch} PENDING (Dependency)" in lines
    assert any(line.startswith(f"pending {trunk_id} {trunk} ") for line in lines)

    deadline = time.monotonic() + 300
    while subprocess.run(["squeue", "-h", "-j", f"{trunk},{branch}"], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "the jobs did not end within 300 s"
        time.sleep(1)
    sacct = subprocess.run(["sacct", "-n", "-P", "-X", "-j", f"{trunk},{branch}", "-o", "JobID,State,Start,End"],
                           capture_output=True, text=True, check=True).stdout
    ((_, trunk_state, _, trunk_end), (_, branch_state, branch_start, _)) = sorted(
        line.split("|") for line in sacct.split())
    assert (trunk_state, branch_state) == ("COMPLETED", "COMPLETED")
    assert branch_start >= trunk_end  # ISO times: the branch started only after its trunk ended
    lines = _status_lines(root, capsys)
    assert lines[:2] == ["2 completed", "Slurm jobs: 2 COMPLETED"]
    assert all(any(line.startswith(f"completed {run_id} {job} COMPLETED top-1 error ") for line in lines)
               for run_id, job in ((trunk_id, trunk), (branch_id, branch)))
    assert read_result(root / branch_id)["num_devices"] == 2  # --env reached the jobs


def test_a_job_of_two_tasks_joins_them_as_one_jax_program_from_slurms_environment(cluster, tmp_path):
    options = SlurmOptions(cpus_per_task=1, tasks_per_node=2, env={"XLA_FLAGS": TWO_DEVICES})
    executor = make_executor(tmp_path, options, "join", tmp_path / "submitit")
    probe = ("import jax; from scaling.runtime.distributed import initialize; initialize(); "
             "print(jax.process_index(), jax.process_count(), jax.device_count())")
    job = executor.submit(submitit.helpers.CommandFunction([sys.executable, "-c", probe]))
    assert [text.split() for text in job.results()] == [["0", "2", "4"], ["1", "2", "4"]]
