"""The local launcher: each point runs `scaling train` in its own process, N at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scaling.records import read_result
from scaling.sweep.progress import SweepProgress
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import compilation_cache_env, is_done, record_unfinished

LOG_FILE = "train.log"


def train_command(point: SweepPoint, root: Path, wandb: str | None) -> list[str]:
    """The `scaling train` command line of one point."""
    command = [sys.executable, "-m", "scaling.cli", "train", "--config", point.config, "--workdir", str(root / point.run_id)]
    command += [f"--config.{override}" for override in (*point.overrides, f"wandb.group={point.sweep}")]
    return command + (["--wandb", wandb] if wandb else [])


def run_local(
    points: list[SweepPoint], root: Path, parallel: int = 1, wandb: str | None = None,
    on_finish: Callable[[SweepPoint, str], None] | None = None,
) -> dict[str, str]:
    """Run every point without a final result, `parallel` at a time; return {run_id: status}.

    Each worker gets an equal share of this machine's CPU cores (and of its GPUs, through
    CUDA_VISIBLE_DEVICES, when there are any). A run that dies without writing a result is recorded
    as failed with the tail of its log.
    """
    root.mkdir(parents=True, exist_ok=True)
    todo = [point for point in points if not is_done(root, point)]
    progress = SweepProgress(total=len(points), already_done=len(points) - len(todo))
    running: dict[int, tuple[SweepPoint, subprocess.Popen, float]] = {}
    statuses: dict[str, str] = {}
    free_slots = list(range(parallel))
    while todo or running:
        while todo and free_slots:
            point, slot = todo.pop(0), free_slots.pop(0)
            running[slot] = (point, _start(point, root, wandb, slot, parallel), time.monotonic())
            progress.started(point.run_id)
        time.sleep(0.2)
        for slot, (point, process, started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[slot]
            free_slots.append(slot)
            status = record_unfinished(root, point, lambda: _log_error(root / point.run_id, process.returncode))
            statuses[point.run_id] = status
            progress.finished(point.run_id, status, time.monotonic() - started, read_result(root / point.run_id))
            if on_finish:
                on_finish(point, status)
    progress.summary()
    return statuses


def _start(point: SweepPoint, root: Path, wandb: str | None, slot: int, parallel: int) -> subprocess.Popen:
    workdir = root / point.run_id
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / LOG_FILE).open("a")
    process = subprocess.Popen(
        train_command(point, root, wandb), stdout=log, stderr=subprocess.STDOUT, env=_worker_env(root, slot, parallel)
    )
    cores = sorted(os.sched_getaffinity(0))[slot::parallel]
    if parallel > 1 and cores:
        os.sched_setaffinity(process.pid, cores)  # before the child starts its threads, which inherit it
    return process


def _worker_env(root: Path, slot: int, parallel: int) -> dict[str, str]:
    """The parent's environment, a compilation cache shared by the sweep's runs, and this slot's GPUs."""
    env = dict(os.environ)
    env = {**compilation_cache_env(root), **env}
    gpus = env.get("CUDA_VISIBLE_DEVICES")
    if gpus and parallel > 1:
        ids = gpus.split(",")
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids[slot::parallel])
    return env


def _log_error(workdir: Path, returncode: int) -> str:
    """Why a process left no result: its exit status and the tail of its log."""
    log_tail = (workdir / LOG_FILE).read_text()[-2000:] if (workdir / LOG_FILE).exists() else ""
    return f"process exited with status {returncode} without a result; log tail:\n{log_tail}"
