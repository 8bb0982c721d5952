"""The local launcher: each launch unit (a point, or a pack of points) trains in its own process, N at a time."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scaling.sweep.progress import SweepProgress
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import compilation_cache_env, is_done, record_unfinished
from scaling.sweep.units import launch_units
from scaling.sweep.worker import encode_points
from scaling.workdir.records import read_result

LOG_FILE = "train.log"


def worker_command(points: list[SweepPoint], root: Path, wandb: str | None) -> list[str]:
    """The command line that trains one launch unit."""
    command = [sys.executable, "-m", "scaling.sweep.worker", str(root), encode_points(points)]
    return command + (["--wandb", wandb] if wandb else [])


def run_local(
    points: list[SweepPoint], root: Path, parallel: int = 1, wandb: str | None = None, pack_size: int = 1,
    on_finish: Callable[[SweepPoint, str], None] | None = None,
) -> dict[str, str]:
    """Run every point without a final result, `parallel` units at a time; return {run_id: status}.

    Points that may share a program are packed `pack_size` at a time (jax.vmap). Each worker gets
    an equal share of this machine's CPU cores (and of its GPUs, through CUDA_VISIBLE_DEVICES). A
    unit that dies without writing results has its points recorded as failed with its log's tail.
    """
    root.mkdir(parents=True, exist_ok=True)
    todo = launch_units([point for point in points if not is_done(root, point)], pack_size)
    progress = SweepProgress(total=len(points), already_done=len(points) - sum(map(len, todo)))
    running: dict[int, tuple[list[SweepPoint], subprocess.Popen, float]] = {}
    statuses: dict[str, str] = {}
    free_slots = list(range(parallel))
    while todo or running:
        while todo and free_slots:
            unit, slot = todo.pop(0), free_slots.pop(0)
            running[slot] = (unit, _start(unit, root, wandb, slot, parallel), time.monotonic())
            for point in unit:
                progress.started(point.run_id)
        time.sleep(0.2)
        for slot, (unit, process, started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[slot]
            free_slots.append(slot)
            for point in unit:
                status = record_unfinished(
                    root, point, functools.partial(_log_error, root / unit[0].run_id, process.returncode)
                )
                statuses[point.run_id] = status
                progress.finished(point.run_id, status, time.monotonic() - started, read_result(root / point.run_id))
                if on_finish:
                    on_finish(point, status)
    progress.summary()
    return statuses


def _start(unit: list[SweepPoint], root: Path, wandb: str | None, slot: int, parallel: int) -> subprocess.Popen:
    """Start a unit's worker, logging to its first point's workdir, pinned to this slot's cores."""
    workdir = root / unit[0].run_id
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / LOG_FILE).open("a")
    process = subprocess.Popen(
        worker_command(unit, root, wandb), stdout=log, stderr=subprocess.STDOUT, env=_worker_env(root, slot, parallel)
    )
    cores = sorted(os.sched_getaffinity(0))[slot::parallel]
    if parallel > 1 and cores:
        os.sched_setaffinity(process.pid, cores)  # before the child starts its threads, which inherit it
    return process


def _worker_env(root: Path, slot: int, parallel: int) -> dict[str, str]:
    """The parent's environment, a compilation cache shared by the sweep's runs, and this slot's GPUs."""
    env = {**compilation_cache_env(root), **os.environ}
    gpus = env.get("CUDA_VISIBLE_DEVICES")
    if gpus and parallel > 1:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus.split(",")[slot::parallel])
    return env


def _log_error(workdir: Path, returncode: int) -> str:
    """Why a process left no result: its exit status and the tail of its log."""
    log_tail = (workdir / LOG_FILE).read_text()[-2000:] if (workdir / LOG_FILE).exists() else ""
    return f"process exited with status {returncode} without a result; log tail:\n{log_tail}"
