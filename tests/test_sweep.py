"""Sweeps: grid notation, stable ids, kill-and-rerun without duplicates, diverged points, results table."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.table.contract import RESULT_COLUMNS
from scaling.cli import main
from scaling.sweep import chain, fixed, local, product, sweep, zipped
from scaling.sweep.spec import SweepPoint, load_sweep
from scaling.workdir.tracking import read_metrics

REPO = Path(__file__).resolve().parents[1]


def test_grid_notation_expands_products_zips_and_chains():
    grid = chain(
        product(sweep("model.width", [4, 8]), sweep("optim.lr", [0.1, 0.01])),
        zipped(sweep("model.width", [16, 32]), sweep("model.depth", [10, 18])),
        fixed(train__steps=5),
    )
    assert grid[:4] == [
        {"model.width": 4, "optim.lr": 0.1}, {"model.width": 4, "optim.lr": 0.01},
        {"model.width": 8, "optim.lr": 0.1}, {"model.width": 8, "optim.lr": 0.01},
    ]
    assert grid[4:] == [
        {"model.width": 16, "model.depth": 10}, {"model.width": 32, "model.depth": 18}, {"train.steps": 5},
    ]
    with pytest.raises(ValueError, match="equal lengths"):
        zipped(sweep("a", [1, 2]), sweep("b", [1]))
    with pytest.raises(ValueError, match="swept twice"):
        product(sweep("a", [1]), sweep("a", [2]))


def _write_sweep(path: Path, data_dir: str, grid: str, extra: str = "") -> Path:
    path.write_text(f'''
from scaling.sweep import product, sweep
NAME = "tiny"
CONFIG = "configs/resnet.py:width=4,depth=10"
OVERRIDES = {{"data.data_dir": "{data_dir}", "train.epochs": None, "train.steps": 20, "train.batch_size": 32,
             "train.eval_batch_size": 64, "train.eval_every_steps": 10, "train.log_every_steps": 10,
             "train.checkpoint_every_steps": 10, "wandb.mode": "disabled"{extra}}}
def get_grid():
    return {grid}
''')
    return path


def test_run_ids_are_stable_and_follow_the_settings(tmp_path):
    path = _write_sweep(tmp_path / "s.py", "/data",
                        'product(sweep("model.width", [4, 8]), sweep("data.train_examples", [100, 200]))')
    first, again = load_sweep(path), load_sweep(path)
    ids = [p.run_id for p in first.points]
    assert ids == [p.run_id for p in again.points] and len(set(ids)) == 4
    assert ids[0].startswith("width4-train_examples100-")
    changed = _write_sweep(tmp_path / "t.py", "/other",
                           'product(sweep("model.width", [4, 8]), sweep("data.train_examples", [100, 200]))')
    assert not set(ids) & {p.run_id for p in load_sweep(changed).points}


def test_killed_sweep_rerun_completes_every_point_once(digits_data_dir, tmp_path):
    path = _write_sweep(tmp_path / "s.py", digits_data_dir, 'sweep("data.train_examples", [200, 400])')
    root = tmp_path / "root"
    command = [sys.executable, "-m", "scaling.cli", "sweep", "run", str(path), "--root", str(root)]
    process = subprocess.Popen(command, cwd=REPO, env=os.environ.copy(), stderr=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, start_new_session=True)
    first = root / load_sweep(path).points[0].run_id / "result.json"
    deadline = time.monotonic() + 240
    while not (first.exists() and '"completed"' in first.read_text()) and time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    first_written = first.stat().st_mtime_ns

    assert main(["sweep", "run", str(path), "--root", str(root)]) == 0
    assert first.stat().st_mtime_ns == first_written  # the finished point was not run again
    assert main(["sweep", "results", "--root", str(root)]) == 0
    table = pd.read_csv(root / "results.csv")
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert table["run_id"].nunique() == 2 and len(table) == 4  # evaluations at steps 10 and 20 of each run
    assert not table.duplicated(["run_id", "step"]).any()
    assert (table["status"] == "completed").all() and table.groupby("run_id")["is_final"].sum().eq(1).all()
    assert sorted(table["train_examples"].unique()) == [200, 400]
    assert (table["sweep"] == "tiny").all()  # also the wandb group of every run
    assert json.loads((root / table["run_id"][0] / "config.json").read_text())["wandb"]["group"] == "tiny"
    assert (table["compute"] == table["flops_per_example"] * table["examples_seen"]).all()
    assert pd.read_parquet(root / "results.parquet").shape == table.shape


def test_diverging_point_is_recorded_and_the_sweep_goes_on(digits_data_dir, tmp_path, capsys):
    # The default adamw, as in the tests around it (their compiled programs are reused): lr 1e30 overflows in steps.
    path = _write_sweep(tmp_path / "s.py", digits_data_dir, 'sweep("optim.lr", [1e30, 1e-3])')
    root = tmp_path / "root"
    assert main(["sweep", "run", str(path), "--root", str(root), "--parallel", "2"]) == 1
    assert main(["sweep", "status", "--root", str(root)]) == 0
    assert "1 completed, 1 diverged" in capsys.readouterr().out
    assert main(["sweep", "results", "--root", str(root)]) == 0
    table = pd.read_csv(root / "results.csv")
    assert set(table.groupby("run_id")["status"].first()) == {"completed", "diverged"}


def test_cooldown_branches_leave_the_trunk_and_each_give_a_row(digits_data_dir, tmp_path):
    path = _write_sweep(tmp_path / "s.py", digits_data_dir, 'sweep("model.width", [4])')
    path.write_text(path.read_text() + "COOLDOWN_FRACTIONS = (0.5, 1.0)\n")
    points = load_sweep(path).points
    trunk, *branches = points
    assert [p.after for p in points] == [None, trunk.run_id, trunk.run_id]
    root = tmp_path / "root"
    assert main(["sweep", "run", str(path), "--root", str(root), "--parallel", "2"]) == 0  # the branches at once
    assert main(["sweep", "results", "--root", str(root)]) == 0
    finals = pd.read_csv(root / "results.csv").query("is_final").set_index("run_id")
    assert finals.loc[trunk.run_id, "schedule"] == "constant" and finals.loc[trunk.run_id, "step"] == 20
    # 0.5 of the trunk's 20 steps = 10, plus a cooldown of 20% of the branch: 13 steps; from 20: 25 steps.
    for branch, branch_step, steps in zip(branches, (10, 20), (13, 25), strict=True):
        assert finals.loc[branch.run_id, "schedule"] == "constant+cooldown"
        assert finals.loc[branch.run_id, "step"] == steps
        lines = read_metrics(root / branch.run_id)
        train_steps = [line["step"] for line in lines if line["kind"] == "train"]
        assert train_steps[0] > branch_step  # trained from the branch point, not from scratch
        last_rate = [line["lr"] for line in lines if line["kind"] == "train"][-1]
        assert last_rate == pytest.approx(config_lr(root / trunk.run_id) / (steps - branch_step))  # linear to 0
    kept = sorted(int(p.name) for p in (root / trunk.run_id / "checkpoints").iterdir() if p.name.isdigit())
    assert {10, 20} <= set(kept)


def config_lr(workdir: Path) -> float:
    return json.loads((workdir / "config.json").read_text())["optim"]["lr"]


def test_parallel_local_workers_split_the_cores(tmp_path, monkeypatch):
    """--parallel 2: worker 0 gets the cores at even positions of this process's affinity, worker 1 the cores at
    odd positions, each with its slot's environment; as seen from inside each started worker process. (GPUs:
    tests/test_sweep_gpus.py.)"""
    report = ("import os, time; time.sleep(0.2); "  # its affinity is set just after it starts
              "print(sorted(os.sched_getaffinity(0)), os.environ['SLOT'])")
    monkeypatch.setattr(local, "worker_command", lambda *args: [sys.executable, "-c", report])
    cores = sorted(os.sched_getaffinity(0))
    for slot in (0, 1):
        point = SweepPoint("split", f"slot{slot}", "configs/resnet.py", ())
        assert local._start([point], tmp_path, None, slot, 2, {**os.environ, "SLOT": f"slot {slot}"}).wait() == 0
        expected = [core for position, core in enumerate(cores) if position % 2 == slot]
        expected = expected or cores  # more workers than cores: not pinned
        log = (tmp_path / point.run_id / local.LOG_FILE).read_text()
        assert log == f"{expected} slot {slot}\n"

