"""Faults a sweep meets unattended, injected for real: a second writer, SIGTERM to the sweep, a torn metrics line,
a kill during a rewrite, damaged records in a root, a full disk, workdirs that cannot be. Each ends in a named
error or a recovery, and no record is lost or duplicated."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.table.contract import METRICS_FILE, RESULT_FILE
from scaling.cli import main
from scaling.errors import PREEMPTED_EXIT
from scaling.runtime.preemption import request_stop
from scaling.sweep.spec import load_sweep
from scaling.train import train_and_evaluate
from scaling.workdir import tracking
from scaling.workdir.records import read_result
from tests.helpers import tiny_args, tiny_config

REPO = Path(__file__).resolve().parents[1]


def _sweep_file(path: Path, data_dir: str, steps: int, widths: str = "[4]") -> Path:
    path.write_text(f'''
from scaling.sweep import sweep
NAME = "faults"
CONFIG = "configs/resnet.py:width=4,depth=10"
OVERRIDES = {{"data.data_dir": "{data_dir}", "train.epochs": None, "train.steps": {steps}, "train.batch_size": 32,
             "train.eval_batch_size": 64, "train.eval_every_steps": 0, "train.log_every_steps": 1,
             "train.checkpoint_every_steps": 1000, "wandb.mode": "disabled"}}
def get_grid():
    return sweep("model.width", {widths})
''')
    return path


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _metric_steps(workdir: Path, kind: str = "train") -> list[int]:
    lines = (workdir / METRICS_FILE).read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if json.loads(line)["kind"] == kind]


def test_one_writer_per_root_and_workdir_and_sigterm_stops_the_sweeps_workers(digits_data_dir, tmp_path, capsys):
    """While a sweep trains: a second `sweep run` on its root and a `train` on its point's workdir are refused,
    naming the holder's PID and host. SIGTERM to the sweep stops its worker (checkpointed, preempted), exit 3."""
    sweep_file = _sweep_file(tmp_path / "s.py", digits_data_dir, steps=100_000)
    root = tmp_path / "root"
    (point,) = load_sweep(sweep_file).points
    workdir = root / point.run_id
    sweep = subprocess.Popen([sys.executable, "-m", "scaling.cli", "sweep", "run", str(sweep_file), "--root",
                              str(root)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (read_result(workdir) or {}).get("status") == "running", 300, "the worker to train")
        (worker,) = _children(sweep.pid)
        host = socket.gethostname()

        assert main(["sweep", "run", str(sweep_file), "--root", str(root)]) == 2
        assert f"PID {sweep.pid} on host {host}" in capsys.readouterr().err
        point_args = [f"--config.{item}" for item in point.overrides]
        assert main(["train", "--config", point.config, *point_args, "--workdir", str(workdir)]) == 2
        error = capsys.readouterr().err
        assert f"workdir {workdir} is in use by PID {worker} on host {host}" in error, error

        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=120) == PREEMPTED_EXIT, sweep.stderr.read()
    finally:
        sweep.kill()
    assert not _alive(worker)
    result = read_result(workdir)
    assert result["status"] == "preempted" and 0 < result["step"] < 100_000
    assert (workdir / "checkpoints" / str(result["step"])).is_dir()
    steps = _metric_steps(workdir)
    assert steps == list(range(1, len(steps) + 1))  # one line per step, none twice
    assert main(["sweep", "run", str(sweep_file), "--root", str(root), "--pack", "0"]) == 2


def test_torn_metrics_line_is_dropped_on_resume_the_run_may_move_and_a_rerun_of_a_completed_run_is_a_no_op(
        digits_data_dir, tmp_path, capsys):
    """Preempted after step 1; its metrics end in a line cut short (kill -9 or a full disk mid-write). The
    rerun, with its cache moved elsewhere, reports and drops the torn line and completes with each step's
    line once, two attempts and their wall time added up. Rerunning the completed run changes nothing."""
    workdir = tmp_path / "run"
    settings = ("train.steps=4", "train.log_every_steps=1", "train.checkpoint_every_steps=100")
    request_stop()  # as SIGTERM: checkpoint and stop after the first step
    first = train_and_evaluate(tiny_config("resnet", digits_data_dir, *settings), workdir)
    assert (first.status, first.step, first.attempts) == ("preempted", 1, 1)
    with open(workdir / METRICS_FILE, "a") as metrics:
        metrics.write('{"step": 2, "kind": "train", "train_lo')

    moved = tiny_config("resnet", digits_data_dir, *settings, f"data.cache_dir={tmp_path / 'moved_cache'}")
    started = time.monotonic()
    second = train_and_evaluate(moved, workdir)
    attempt = time.monotonic() - started
    assert second.status == "completed"
    assert f"{workdir / METRICS_FILE}" in capsys.readouterr().err
    assert _metric_steps(workdir) == [1, 2, 3, 4] and _metric_steps(workdir, "eval") == [4]
    recorded = read_result(workdir)
    assert recorded["attempts"] == 2
    assert first.wall_seconds < recorded["wall_seconds"] <= first.wall_seconds + attempt

    before = {name: (workdir / name).read_bytes() for name in (METRICS_FILE, RESULT_FILE)}
    again = train_and_evaluate(moved, workdir)
    assert again.status == "completed" and again.final_eval == recorded["final_eval"]
    assert "already completed" in capsys.readouterr().err
    assert {name: (workdir / name).read_bytes() for name in before} == before


def test_a_kill_while_metrics_are_rewritten_leaves_them_whole(tmp_path, monkeypatch):
    """The resume rewrite of metrics.jsonl replaces the file at once: killed before the replace, the old
    history is all there (today's in-place rewrite emptied it)."""
    lines = [{"step": step, "kind": "train", "train_loss": 1.0 / step} for step in range(1, 6)]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (tmp_path / METRICS_FILE).write_text(text)

    def killed(*_):
        raise KeyboardInterrupt  # the process dies between writing the new file and replacing the old one

    monkeypatch.setattr(Path, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        tracking.drop_lines_after(tmp_path, 3)
    assert (tmp_path / METRICS_FILE).read_text() == text
    monkeypatch.undo()
    tracking.drop_lines_after(tmp_path, 3)
    assert [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()] == lines[:3]


def _completed_run(workdir: Path, config: dict, top1_error: float) -> None:
    """A run folder as a completed run leaves it (the files the table reads)."""
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps(config))
    final = {"eval_loss": 1.0, "top1_error": top1_error, "top5_error": 0.0}
    (workdir / METRICS_FILE).write_text(json.dumps({"step": 2, "kind": "eval", "examples_seen": 64, **final}) + "\n")
    (workdir / RESULT_FILE).write_text(json.dumps({
        "status": "completed", "family": "resnet", "params": 100, "flops_per_example": 1e3, "step": 2,
        "examples_seen": 64, "final_eval": final, "wall_seconds": 1.0}))


def test_damaged_records_in_a_root_are_named_and_the_rest_proceeds(digits_data_dir, tmp_path, capsys):
    """Point A completed, B's result.json is torn: `sweep status` names B's file, `sweep run` retries B alone
    (A untouched). Then A's config.json is damaged: `sweep results` names it and keeps B's rows. B is the width
    the tests above trained, so its worker reuses their compiled programs."""
    sweep_file = _sweep_file(tmp_path / "s.py", digits_data_dir, steps=2, widths="[8, 4]")
    root = tmp_path / "root"
    a, b = load_sweep(sweep_file).points
    _completed_run(root / a.run_id, {"model": {"width": 8}}, 0.5)
    (root / b.run_id).mkdir(parents=True)
    (root / b.run_id / RESULT_FILE).write_text('{"status": "compl')
    a_files = {path: path.read_bytes() for path in (root / a.run_id).iterdir()}

    assert main(["sweep", "status", "--root", str(root), str(sweep_file)]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and str(root / b.run_id / RESULT_FILE) in out

    assert main(["sweep", "run", str(sweep_file), "--root", str(root)]) == 0
    assert str(root / b.run_id / RESULT_FILE) in capsys.readouterr().err
    assert read_result(root / b.run_id)["status"] == "completed"
    assert {path: path.read_bytes() for path in a_files} == a_files

    (root / a.run_id / "config.json").write_text("")
    assert main(["sweep", "results", "--root", str(root), str(sweep_file)]) == 0
    assert str(root / a.run_id / "config.json") in capsys.readouterr().err
    table = pd.read_csv(root / "results.csv")
    assert table["run_id"].tolist() == [b.run_id]  # B's one evaluation, once


def test_a_sweeps_table_holds_its_points_and_lists_the_others(digits_data_dir, tmp_path, capsys):
    """A root holding runs of an earlier version of the sweep: given the sweep file, results takes exactly its
    points and status flags the others. A root that does not exist is an error."""
    sweep_file = _sweep_file(tmp_path / "s.py", digits_data_dir, steps=2, widths="[4, 8]")
    root = tmp_path / "root"
    a, b = load_sweep(sweep_file).points
    _completed_run(root / a.run_id, {}, 0.5)
    _completed_run(root / b.run_id, {}, 0.4)
    _completed_run(root / "width16-0123abcd", {}, 0.3)  # a point the sweep file no longer has

    assert main(["sweep", "results", "--root", str(root), str(sweep_file)]) == 0
    assert "width16-0123abcd" in capsys.readouterr().err
    assert sorted(pd.read_csv(root / "results.csv")["run_id"]) == sorted([a.run_id, b.run_id])
    assert main(["sweep", "status", "--root", str(root), str(sweep_file)]) == 0
    flagged = [line for line in capsys.readouterr().out.splitlines() if "not a point of" in line]
    assert len(flagged) == 1 and "width16-0123abcd" in flagged[0]
    assert main(["sweep", "results", "--root", str(root)]) == 0  # without the file: every run
    assert len(pd.read_csv(root / "results.csv")) == 3

    for command in ("results", "status"):
        assert main(["sweep", command, "--root", str(tmp_path / "nowhere")]) == 2
        assert "nowhere does not exist" in capsys.readouterr().err


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert sum(line.startswith("error:") for line in text.splitlines()) == 1, text


def test_a_full_disk_during_a_checkpoint_is_one_error_line_and_a_failed_record(digits_data_dir, tmp_path):
    """Files may not grow past 60 kB (RLIMIT_FSIZE: writes fail as on a full disk): the tiny model's config and
    metrics fit, its first checkpoint does not. The run is recorded failed with the reason, in one line."""

    small_files = "trap '' XFSZ; ulimit -f 60; exec \"$@\""  # 60 blocks of 1 kB; writes past it fail (EFBIG)
    args = tiny_args("resnet", digits_data_dir, "train.steps=4", "train.checkpoint_every_steps=2",
                     "data.train_examples=64")
    done = subprocess.run(["bash", "-c", small_files, "bash", sys.executable, "-m", "scaling.cli", "train", *args,
                           "--workdir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    _no_traceback(done.stderr)
    result = read_result(tmp_path)
    assert result["status"] == "failed" and "File too large" in result["error"]
    assert "File too large" in (tmp_path / "traceback.txt").read_text()


def test_a_full_disk_during_a_metrics_write_is_recorded_failed(digits_data_dir, tmp_path, monkeypatch, capsys):
    def full_disk(self, step, metrics):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(tracking.JsonlTracker, "log", full_disk)
    assert main(["train", *tiny_args("resnet", digits_data_dir, "train.steps=2"), "--workdir", str(tmp_path)]) == 1
    _no_traceback(capsys.readouterr().err)
    result = read_result(tmp_path)
    assert result["status"] == "failed" and "No space left on device" in result["error"]


def test_workdirs_that_cannot_be_are_refused_before_anything_runs(digits_data_dir, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    for workdir in (a_file, a_file / "run", tmp_path / ("x" * 300), Path("/sys/fs/scaling-run")):
        assert main(["train", *tiny_args("resnet", digits_data_dir), "--workdir", str(workdir)]) == 2
        error = capsys.readouterr().err
        _no_traceback(error)
        assert f"workdir {workdir} cannot be used" in error
