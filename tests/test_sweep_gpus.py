"""Sweeps on a GPU box, without a GPU: how the local launcher shares GPUs out (each worker's environment), the
default --parallel, the worker's refusal to fall back to the CPU, and --env for local workers and Slurm jobs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_sweep import _write_sweep

from scaling.cli import main
from scaling.errors import ConfigError
from scaling.sweep import local, slurm  # slurm imported here, not first under capsys: see the Slurm test
from scaling.sweep.gpus import platform_error, visible_gpus
from scaling.sweep.spec import SweepPoint, load_sweep
from scaling.sweep.worker import train_unit
from scaling.workdir.records import read_result

GPU_SETTINGS = ("CUDA_VISIBLE_DEVICES", "SCALING_EXPECT_PLATFORM", "XLA_CLIENT_MEM_FRACTION",
                "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE")
EIGHT = [str(index) for index in range(8)]


@pytest.fixture
def no_gpu_settings(monkeypatch):
    """None of the GPU settings inherited from the shell running the tests."""
    for name in GPU_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def _whole(*blocks: str) -> list[dict[str, str]]:
    return [{"CUDA_VISIBLE_DEVICES": block, "SCALING_EXPECT_PLATFORM": "gpu"} for block in blocks]


def _shared(fraction: str, *gpus: str) -> list[dict[str, str]]:
    return [{"CUDA_VISIBLE_DEVICES": gpu, "SCALING_EXPECT_PLATFORM": "gpu", "XLA_CLIENT_MEM_FRACTION": fraction,
             "XLA_PYTHON_CLIENT_PREALLOCATE": "true"} for gpu in gpus]


@pytest.mark.parametrize(("gpus", "parallel", "expected"), [
    (EIGHT, 8, _whole(*EIGHT)),
    (EIGHT, 2, _whole("0,1,2,3", "4,5,6,7")),
    (EIGHT, 3, _whole("0,1", "2,3", "4,5")),  # 6 and 7 idle: every run sees the same number of devices
    (["0", "1"], 4, _shared("0.45", "0", "1", "0", "1")),  # 2 workers per GPU: 0.9 / 2 of its memory each
    (["0"], 3, _shared("0.3", "0", "0", "0")),
    ([], 2, [{}, {}]),  # no GPUs: as before, nothing set
])
def test_each_worker_gets_whole_gpus_or_a_memory_fraction_of_a_shared_one(
        gpus, parallel, expected, tmp_path, no_gpu_settings, capsys):
    envs = local.worker_envs(tmp_path, parallel, gpus, {})
    assert [{name: env[name] for name in GPU_SETTINGS if name in env} for env in envs] == expected
    idle = "warning: 3 workers get 2 of the 8 GPUs each, leaving 6,7 idle; use a --parallel that divides 8"
    assert (idle in capsys.readouterr().err) == ((gpus, parallel) == (EIGHT, 3))


def test_a_memory_fraction_replaces_one_under_jaxs_other_name(tmp_path, no_gpu_settings, monkeypatch):
    """jax refuses XLA_CLIENT_MEM_FRACTION together with its deprecated name: a worker never gets both."""
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.9")  # the shell's, for a GPU of its own
    (first, _) = local.worker_envs(tmp_path, 2, ["0"], {})
    assert first["XLA_CLIENT_MEM_FRACTION"] == "0.45" and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in first
    (first, _) = local.worker_envs(tmp_path, 2, ["0"], {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.2"})  # --env wins
    assert first["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.2" and "XLA_CLIENT_MEM_FRACTION" not in first


def _tool(folder: Path, name: str, script: str) -> None:
    """An executable shell script `name` in `folder`."""
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{script}\n")
    (folder / name).chmod(0o755)


@pytest.mark.parametrize(("settings", "nvidia_smi", "expected"), [
    ({"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "0,1"}, "printf '0\\n1\\n'", []),  # jax told to use the CPU
    ({"CUDA_VISIBLE_DEVICES": "2,3"}, "printf '0\\n1\\n2\\n3\\n'", ["2", "3"]),  # the shell's choice, not all
    ({"CUDA_VISIBLE_DEVICES": "GPU-8f3a,GPU-77c1"}, None, ["GPU-8f3a", "GPU-77c1"]),
    ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, None, ["1"]),  # CUDA stops at an invalid entry
    ({"CUDA_VISIBLE_DEVICES": ""}, "printf '0\\n'", []),
    ({"JAX_PLATFORMS": "cuda,cpu"}, "printf '0\\n1\\n2\\n'", ["0", "1", "2"]),
    ({}, None, []),  # no nvidia-smi: a CPU machine
])
def test_gpus_are_found_without_starting_jax(settings, nvidia_smi, expected, tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    if nvidia_smi:
        _tool(tmp_path / "bin", "nvidia-smi", nvidia_smi)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert visible_gpus() == expected


def test_a_failing_nvidia_smi_is_one_error_naming_the_way_out(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _tool(tmp_path / "bin", "nvidia-smi", "echo 'NVIDIA-SMI has failed because it could not communicate with the "
          "NVIDIA driver.'; exit 9")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ConfigError, match=r"`nvidia-smi` failed \(NVIDIA-SMI has failed .*\).*JAX_PLATFORMS=cpu"):
        visible_gpus()


def test_parallel_defaults_to_one_worker_per_gpu_and_env_reaches_the_workers(
        digits_data_dir, tmp_path, no_gpu_settings, monkeypatch):
    """Two GPUs found by nvidia-smi, no --parallel: two workers of one GPU each, so the first gets GPU 0 (a single
    worker would get "0,1"); as seen from inside the started worker process, with the --env settings (XLA_FLAGS
    replacing the tests' own)."""
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    _tool(tmp_path / "bin", "nvidia-smi", "printf '0\\n1\\n'")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    report = "import os; print(*(os.environ.get(name) for name in ('CUDA_VISIBLE_DEVICES', 'XLA_FLAGS', 'COLOR')))"
    monkeypatch.setattr(local, "worker_command", lambda *args: [sys.executable, "-c", report])
    path = _write_sweep(tmp_path / "s.py", digits_data_dir, 'sweep("optim.lr", [1e-3])')
    root = tmp_path / "root"

    assert main(["sweep", "run", str(path), "--root", str(root), "--env", "XLA_FLAGS=--xla_given=true",
                 "--env", "COLOR=a=b c"]) == 1  # the stand-in worker writes no result
    (point,) = load_sweep(path).points
    assert (root / point.run_id / local.LOG_FILE).read_text() == "0 --xla_given=true a=b c\n"


@pytest.mark.parametrize("argument", ["XLA_FLAGS", "1X=2", "=3", "X-Y=1", "CUDA_VISIBLE_DEVICES=0"])
def test_bad_env_argument_is_one_error_line(argument, tmp_path, capsys):
    assert main(["sweep", "run", "experiments/demo.py", "--root", str(tmp_path), "--env", argument]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --env ") and err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing ran


def test_worker_given_gpus_that_comes_up_on_the_cpu_fails_its_points(tmp_path, monkeypatch, capsys):
    """This process's jax runs on the CPU: told it was given GPU 3, the worker records each point as failed with
    the reason and trains nothing."""
    monkeypatch.delenv("SCALING_EXPECT_PLATFORM", raising=False)
    assert platform_error() is None  # not given GPUs: any platform will do
    monkeypatch.setenv("SCALING_EXPECT_PLATFORM", "cpu")
    assert platform_error() is None
    monkeypatch.setenv("SCALING_EXPECT_PLATFORM", "gpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    message = platform_error()
    assert message.startswith("this worker was given GPUs (CUDA_VISIBLE_DEVICES=3) but jax runs on cpu")
    assert "jax-cuda12-plugin" in message and "JAX_PLATFORMS=cpu" in message

    points = [SweepPoint("gpu", f"lr{index}", "configs/resnet.py", ()) for index in range(2)]
    assert train_unit(points, tmp_path) == {"lr0": "failed", "lr1": "failed"}
    for point in points:
        assert read_result(tmp_path / point.run_id)["error"] == message
        assert not (tmp_path / point.run_id / "config.json").exists()  # never started training
    assert capsys.readouterr().err == f"error: {message}\n"


def test_slurm_jobs_get_the_env_and_not_the_shells_xla_flags(digits_data_dir, tmp_path, monkeypatch, capsys):
    """Through submitit to a stand-in `sbatch` that keeps the job script and refuses it: the script's setup, run
    in the submitting shell's environment as sbatch would, drops the shell's XLA_FLAGS and memory fraction for the
    ones given with --env, and marks the job as one that must train on its GPUs. (The module `slurm` is imported
    with the tests, not first under capsys: submitit's logging.config.dictConfig closes the existing logging
    handlers, and absl's then closes its stream, pytest's capture file, unless that is the sys.stderr of the moment.)"""
    capture = tmp_path / "job.sh"
    _tool(tmp_path / "bin", "sinfo", "echo 'debug*'")
    _tool(tmp_path / "bin", "srun", "exit 0")
    _tool(tmp_path / "bin", "sbatch", f"cp \"$1\" {capture}; echo 'sbatch: error: refused by the test' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    shell = {**os.environ, "XLA_FLAGS": "--xla_login_node_flag", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.75"}
    path = _write_sweep(tmp_path / "s.py", digits_data_dir, 'sweep("optim.lr", [1e-3])')

    assert main(["sweep", "run", str(path), "--root", str(tmp_path / "root"), "--launcher", "slurm",
                 "--gpus-per-node", "1", "--env", "XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true",
                 "--env", "XLA_CLIENT_MEM_FRACTION=0.5"]) == 2
    assert "error: sbatch refused the sweep's job array: sbatch: error: refused by the test" in capsys.readouterr().err
    script = capture.read_text()
    setup = script[script.index("# setup\n"):script.index("\n# command")]
    report = '\necho "$XLA_FLAGS, ${XLA_PYTHON_CLIENT_MEM_FRACTION-unset}, $XLA_CLIENT_MEM_FRACTION, ' \
             '$SCALING_EXPECT_PLATFORM"'
    job = subprocess.run(["bash", "-c", setup + report], env=shell, capture_output=True, text=True, check=True)
    assert job.stdout == "--xla_gpu_enable_latency_hiding_scheduler=true, unset, 0.5, gpu\n"

    setup = "\n".join(slurm._job_setup(tmp_path, {}))  # without --env and GPUs: no XLA_FLAGS, no platform required
    job = subprocess.run(["bash", "-c", setup + report], env=shell, capture_output=True, text=True, check=True)
    assert job.stdout == ", 0.75, , \n"
