"""The Slurm launcher without a cluster: its options and their checks, the sbatch scripts it writes, detached
submission and its record, and `sweep status` reading job states (Slurm's commands faked by shell scripts)."""

import argparse
import json
import pickle
import stat
from pathlib import Path

import pytest

from scaling.cli import main
from scaling.sweep import slurm
from scaling.sweep.slurm import SubmittedArray, UnitJob, submit_detached
from scaling.sweep.slurm_options import SlurmOptions, add_slurm_arguments, slurm_options
from scaling.sweep.spec import SweepPoint, dependency_waves
from scaling.workdir.records import read_result

TRUNK = SweepPoint("s", "trunk", "configs/resnet.py", ())
BRANCHES = [SweepPoint("s", f"trunk-cooldown{f}", "configs/resnet.py", (), after="trunk") for f in (0.5, 1)]
ALONE = SweepPoint("s", "alone", "configs/resnet.py", ())


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """Slurm's commands as scripts: sbatch keeps each script it is given as sbatch-<id>.sh and answers ids 41, 42,
    ...; squeue and sacct print the files squeue.txt and sacct.txt of the returned folder."""
    folder = tmp_path / "slurm"
    folder.mkdir()
    scripts = {
        "sbatch": f'n=$(($(cat {folder}/count 2>/dev/null || echo 40) + 1)); echo $n > {folder}/count; '
                  f'cp "$1" {folder}/sbatch-$n.sh; echo "Submitted batch job $n"',
        "sinfo": "echo 'debug*'", "srun": "exit 0",
        "squeue": f"cat {folder}/squeue.txt 2>/dev/null; exit 0",
        "sacct": f"cat {folder}/sacct.txt 2>/dev/null; exit 0",
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}:/bin:/usr/bin")
    return folder


def test_options_map_onto_sbatch_parameters_one_task_per_gpu_across_nodes():
    common = {"time": 60, "cpus_per_task": 4, "array_parallelism": 64}
    assert SlurmOptions(gpus_per_node=8).executor_parameters() == {
        **common, "nodes": 1, "ntasks_per_node": 1, "gpus_per_node": 8}
    assert SlurmOptions(nodes=2, gpus_per_node=8).executor_parameters() == {
        **common, "nodes": 2, "ntasks_per_node": 8, "gpus_per_task": 1}
    assert SlurmOptions(gpus_per_node=8, tasks_per_node=2, account="a", qos="q", mem="500M", constraint="h100",
                        partition="gpu", params={"comment": "c", "exclusive": True}).executor_parameters() == {
        **common, "nodes": 1, "ntasks_per_node": 2, "gpus_per_task": 4, "account": "a", "qos": "q", "mem": "500M",
        "constraint": "h100", "partition": "gpu", "additional_parameters": {"comment": "c", "exclusive": True}}


def test_command_line_wins_over_the_sweep_files_slurm_dict_over_the_defaults():
    parser = argparse.ArgumentParser()
    add_slurm_arguments(parser)
    args = parser.parse_args(["--account", "mine", "--slurm-param", "mail-type=FAIL", "--slurm-param=--exclusive",
                              "--max-requeues", "0"])
    from_file = {"account": "team", "qos": "low", "timeout_min": 240, "params": {"mail-type": "END", "wckey": "w"},
                 "env": {"XLA_FLAGS": "--file", "TF_CPP_MIN_LOG_LEVEL": "3"}}
    assert slurm_options(args, {"XLA_FLAGS": "--cli"}, from_file, "x.py") == SlurmOptions(
        account="mine", qos="low", timeout_min=240, max_requeues=0,
        params={"mail-type": "FAIL", "wckey": "w", "exclusive": True},
        env={"XLA_FLAGS": "--cli", "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.parametrize(("flags", "slurm_dict", "error"), [
    (["--mem", "64GB"], {}, "--mem '64GB' is not a Slurm memory size: give a whole number with an optional unit K,"),
    (["--slurm-param", "=x"], {}, "--slurm-param '=x' is not KEY=VALUE or KEY with KEY an sbatch parameter name"),
    (["--slurm-param", "array=0-3"], {}, "--slurm-param 'array=0-3': the Slurm launcher sets --array itself"),
    (["--slurm-param", "account=a"], {}, "the Slurm launcher sets --account itself (use --account)"),
    (["--gpus-per-node", "8", "--tasks-per-node", "3"], {}, "--tasks-per-node 3 does not divide --gpus-per-node 8"),
    (["--cpus-per-task", "0"], {}, "--cpus-per-task must be a positive integer, got 0"),
    ([], {"acount": "a"}, "has unknown keys 'acount'; allowed: account, qos,"),
    ([], {"params": {"time": "10"}}, "['params']['time']: the Slurm launcher sets --time itself (use --timeout-min)"),
    ([], {"env": {"CUDA_VISIBLE_DEVICES": "0"}}, "['env']: --env CUDA_VISIBLE_DEVICES: the launchers give"),
])
def test_bad_slurm_options_are_one_error_line_before_anything_is_submitted(tmp_path, capsys, flags, slurm_dict,
                                                                           error):
    path = tmp_path / "s.py"
    path.write_text(f"CONFIG = 'configs/resnet.py'\nSLURM = {slurm_dict!r}\ndef get_grid():\n    return [{{}}]\n")
    root = tmp_path / "root"
    assert main(["sweep", "run", str(path), "--root", str(root), "--launcher", "slurm", *flags]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and error in lines[0], lines
    assert not root.exists()


def test_slurm_flags_with_the_local_launcher_are_an_error(tmp_path, capsys):
    assert main(["sweep", "run", "s.py", "--root", str(tmp_path), "--account", "a", "--detach"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --account, --detach apply to --launcher slurm only: add "
                                               "--launcher slurm, or drop them")


def test_detached_waves_chain_by_afterok_carry_the_options_and_are_not_submitted_twice(tmp_path, fake_slurm):
    root = tmp_path / "root"
    options = SlurmOptions(account="acct", qos="high", mem="64G", constraint="a100", cpus_per_task=8,
                           gpus_per_node=8, timeout_min=120, max_requeues=5, array_parallelism=2,
                           params={"comment": "scaling", "exclusive": True}, env={"XLA_FLAGS": "--flag"})
    waves = dependency_waves([TRUNK, ALONE, *BRANCHES])

    assert submit_detached(waves, root, options) == (
        [SubmittedArray("41", 2, 2, ()), SubmittedArray("42", 2, 2, ("41",))], {})
    trunks, branches = (set((fake_slurm / f"sbatch-{job}.sh").read_text().splitlines()) for job in (41, 42))
    expected = {"#SBATCH --account=acct", "#SBATCH --qos=high", "#SBATCH --mem=64G", "#SBATCH --constraint=a100",
                "#SBATCH --cpus-per-task=8", "#SBATCH --gpus-per-node=8", "#SBATCH --nodes=1",
                "#SBATCH --ntasks-per-node=1", "#SBATCH --time=120", "#SBATCH --comment=scaling",
                "#SBATCH --exclusive", "#SBATCH --array=0-1%2", "export XLA_FLAGS=--flag"}
    assert expected <= trunks and expected <= branches
    assert not any("dependency" in line for line in trunks)
    assert {"#SBATCH --dependency=afterok:41", "#SBATCH --kill-on-invalid-dep=yes"} <= branches
    jobs = json.loads((root / ".slurm" / "jobs.json").read_text())["jobs"]
    assert {run_id: job["job"] for run_id, job in jobs.items()} == {
        "trunk": "41_0", "alone": "41_1", "trunk-cooldown0.5": "42_0", "trunk-cooldown1": "42_1"}
    (folder,) = (root / ".submitit").iterdir()
    with (folder / "41_0_submitted.pkl").open("rb") as file:
        delayed = pickle.load(file)
    assert (delayed._timeout_countdown, delayed._timeout_min) == (5, 120)  # requeues after a time limit: 5

    # The trunks still run, the branches' array was cancelled: only the branches go again, after the same trunks.
    (fake_slurm / "squeue.txt").write_text("41_0|RUNNING|None\n41_1|RUNNING|None\n")
    (fake_slurm / "sacct.txt").write_text("42_[0-1%2]|CANCELLED by 0\n")
    assert submit_detached(waves, root, options) == (
        [SubmittedArray("43", 2, 2, ("41",))], {"trunk": "41_0", "alone": "41_1"})
    assert "#SBATCH --dependency=afterok:41" in (fake_slurm / "sbatch-43.sh").read_text()
    assert not (fake_slurm / "sbatch-44.sh").exists()


def test_status_shows_each_points_job_and_records_jobs_that_ended_without_a_result(tmp_path, fake_slurm, capsys):
    root = tmp_path / "root"
    submit_detached(dependency_waves([TRUNK, ALONE, *BRANCHES]), root, SlurmOptions())
    (fake_slurm / "squeue.txt").write_text("41_0|RUNNING|None\n")
    (fake_slurm / "sacct.txt").write_text("41_1|OUT_OF_MEMORY\n42_[0-1]|CANCELLED by 0\n")

    assert main(["sweep", "status", "--root", str(root)]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        "3 failed, 1 pending",
        "Slurm jobs: 2 CANCELLED, 1 OUT_OF_MEMORY, 1 RUNNING",
        "failed alone 41_1 OUT_OF_MEMORY Slurm job 41_1 ended OUT_OF_MEMORY without a result",
        "pending trunk 41_0 RUNNING",
        "failed trunk-cooldown0.5 42_0 CANCELLED Slurm job 42_0 ended CANCELLED without a result "
        "(it was to start once job 41 completed: afterok)",
        "failed trunk-cooldown1 42_1 CANCELLED Slurm job 42_1 ended CANCELLED without a result "
        "(it was to start once job 41 completed: afterok)",
    ]
    result = read_result(root / "alone")
    assert result["status"] == "failed" and "41_1_0_log.err:\n(no log)" in result["error"]
    assert read_result(root / "trunk") is None


def test_a_job_whose_runs_did_not_complete_fails_after_joining_its_tasks(tmp_path, monkeypatch):
    joined = []
    monkeypatch.setattr(slurm, "initialize", lambda: joined.append(True))
    monkeypatch.setattr(slurm, "train_unit", lambda points, root, wandb: {"trunk": "diverged"})
    with pytest.raises(RuntimeError, match=r"runs not completed: \{'trunk': 'diverged'\}; the job fails"):
        UnitJob()([TRUNK], str(tmp_path), None)
    monkeypatch.setattr(slurm, "train_unit", lambda points, root, wandb: {"trunk": "completed"})
    assert UnitJob()([TRUNK], str(tmp_path), None) == {"trunk": "completed"}
    assert joined == [True, True]
