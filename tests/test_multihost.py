"""One run over several JAX processes: joining them, and two processes on localhost training like one."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest
from helpers import assert_same_checkpoints, tiny_args

from scaling.cli import PREEMPTED_EXIT, main
from scaling.errors import ConfigError
from scaling.runtime import distributed
from scaling.workdir.records import read_result
from scaling.workdir.tracking import read_metrics

REPO = Path(__file__).resolve().parents[1]
CLUSTER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_STEP_NODELIST", "SLURM_PROCID",
                     "SLURM_LOCALID", "OMPI_MCA_orte_hnp_uri", "KUBERNETES_SERVICE_HOST", "TPU_WORKER_HOSTNAMES")


@pytest.fixture
def joins(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The arguments of every `jax.distributed.initialize` call, in an environment with no cluster."""
    for name in CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **arguments: calls.append(arguments))
    return calls


def _slurm(monkeypatch: pytest.MonkeyPatch, tasks: int) -> None:
    for name, value in {"SLURM_JOB_ID": "42", "SLURM_NTASKS": str(tasks), "SLURM_STEP_NODELIST": "node[001-002]",
                        "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
        monkeypatch.setenv(name, value)


def test_a_single_process_starts_no_coordinator(joins, monkeypatch):
    distributed.initialize(None, None, None)
    _slurm(monkeypatch, tasks=1)  # a one-task job of the sweep's Slurm launcher
    distributed.initialize(None, None, None)
    assert joins == []


def test_a_cluster_of_several_processes_is_joined_as_jax_detects_it(joins, monkeypatch):
    _slurm(monkeypatch, tasks=2)
    distributed.initialize(None, None, None)
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "node001:1234")
    distributed.initialize(None, None, None)
    assert joins == [{}, {}]


def test_explicit_flags_join_the_coordinator(joins):
    distributed.initialize("10.0.0.1:1234", 4, 3)
    assert joins == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3}]


@pytest.mark.parametrize("flags, message", [
    ((None, 2, 0), "--coordinator missing"),
    (("localhost:1234", None, None), "--num-processes, --process-id missing"),
    (("localhost", 2, 0), "not HOST:PORT"),
    (("localhost:1234", 2, 2), "0 to N-1"),
])
def test_incomplete_or_wrong_flags_are_clear_errors(joins, flags, message):
    with pytest.raises(ConfigError, match=message):
        distributed.initialize(*flags)
    assert joins == []


def test_cli_reports_incomplete_flags(joins, capsys, tmp_path):
    assert main(["train", "--config", "configs/resnet.py", "--workdir", str(tmp_path), "--num-processes", "2"]) == 2
    assert "--coordinator, --process-id missing" in capsys.readouterr().err
    assert joins == [] and not any(tmp_path.iterdir())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _train_lines(workdir: Path) -> list[dict]:
    return [line for line in read_metrics(workdir) if line["kind"] == "train"]


def _launch(args: list[str], workdir: Path, coordinator: str, env: dict[str, str]) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "scaling.cli", "train", *args, "--workdir", str(workdir),
             "--coordinator", coordinator,
             "--num-processes", "2", "--process-id", str(index)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for index in range(2)
    ]


def _exit_codes(processes: list[subprocess.Popen]) -> tuple[list[int], str]:
    """Wait for the processes (killing them after 240 s, so that a hang fails the test); their codes and logs."""
    try:
        logs = [process.communicate(timeout=240)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [process.returncode for process in processes], "\n\n".join(log[-3000:] for log in logs)


def test_two_processes_train_like_one_and_a_preemption_of_one_host_stops_both(digits_data_dir, tmp_path):
    """2 processes x 4 devices on localhost (gloo collectives) against 1 process x 8 devices, same batches.

    SIGTERM reaches process 1 only: JAX's preemption service makes both checkpoint the same step s and stop.
    That checkpoint equals one process's after s steps (a constant learning rate, so the run's length does not
    matter); the same commands again resume and finish, process 0 alone writing the records. The rate is small
    enough that the reduction-order drift stays within the tolerance wherever the preemption lands (at 0.05 it
    did not from step 9 on); a batch or step out of place still differs by far more."""
    common = ["train.log_every_steps=10", "train.checkpoint_every_steps=1000", "mesh.data=-1", "optim.name=sgd",
              "optim.lr=0.01", "optim.schedule=constant", "optim.warmup_fraction=0"]
    args = tiny_args("resnet", digits_data_dir, "train.steps=30", *common)
    two, one = tmp_path / "two", tmp_path / "one"
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", ""))
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=4".strip()}
    processes = _launch(args, two, f"localhost:{_free_port()}", env)
    deadline = time.monotonic() + 180
    while not (two / "metrics.jsonl").exists() and time.monotonic() < deadline:  # process 0 is about to train
        assert all(process.poll() is None for process in processes), _exit_codes(processes)[1]
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGTERM)
    codes, logs = _exit_codes(processes)
    assert codes == [PREEMPTED_EXIT, PREEMPTED_EXIT], logs
    stopped = read_result(two)
    assert stopped["status"] == "preempted" and 0 < stopped["step"] < 30 and stopped["num_devices"] == 8
    assert sorted(int(p.name) for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == [stopped["step"]]

    assert main(["train", *tiny_args("resnet", digits_data_dir, f"train.steps={stopped['step']}", *common),
                 "--workdir", str(one)]) == 0
    assert_same_checkpoints(two, one, rtol=1e-3, atol=5e-5)  # reduction order differs

    codes, logs = _exit_codes(_launch(args, two, f"localhost:{_free_port()}", env))
    assert codes == [0, 0], logs
    assert read_result(two)["status"] == "completed" and read_result(two)["step"] == 30
    assert sorted(path.name for path in two.iterdir()) == sorted(path.name for path in one.iterdir())
    assert [line["step"] for line in _train_lines(two)] == [10, 20, 30]  # process 0 alone logs, each line once
