"""The local launcher: each launch unit (a point, or a pack of points) trains in its own process, N at a time."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from analysis.table.contract import Status
from scaling.sweep.gpus import assign_gpus, visible_gpus
from scaling.sweep.progress import SweepProgress
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import compilation_cache_env, is_done, merge_env, readable_result, record_unfinished
from scaling.sweep.units import launch_units
from scaling.sweep.worker import encode_points

LOG_FILE = "train.log"
STOP_GRACE_S = 120  # seconds a worker gets to checkpoint and stop before it is killed


def worker_command(points: list[SweepPoint], root: Path, wandb: str | None) -> list[str]:
    """The command line that trains one launch unit."""
    command = [sys.executable, "-m", "scaling.sweep.worker", str(root), encode_points(points)]
    return command + (["--wandb", wandb] if wandb else [])


class SweepStopped(Exception):
    """SIGTERM stopped the sweep: its running workers checkpointed and stopped; the same command resumes it."""


def run_local(
    points: list[SweepPoint], root: Path, parallel: int = 1, wandb: str | None = None, pack_size: int = 1,
    gpus: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
    on_finish: Callable[[SweepPoint, str], None] | None = None, work: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Run every point without a final result, `parallel` units at a time; return {run_id: status}.

    Points that may share a program are packed `pack_size` at a time (jax.vmap). Each worker gets
    an equal share of this machine's CPU cores and its part of `gpus` (default: `visible_gpus()`; see
    `assign_gpus`), and `env` on top of the inherited environment. `work` (run id -> planned FLOPs,
    `planned_work`) weighs the progress line's ETA. A unit that dies without writing
    results has its points recorded as failed with its log's tail.
    SIGTERM is passed on to the running workers (they checkpoint and stop as preempted), no unit starts
    after it, and SweepStopped is raised once they have stopped; on any other way out the workers are
    stopped the same way, never left behind.
    """
    root.mkdir(parents=True, exist_ok=True)
    todo = launch_units([point for point in points if not is_done(root, point)], pack_size)
    progress = SweepProgress.of_launch(len(points), todo, work)
    slot_envs = worker_envs(root, parallel, visible_gpus() if gpus is None else gpus, env or {})
    workers = _Workers()
    statuses: dict[str, str] = {}
    free_slots = list(range(parallel))
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers are set
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main_thread else None
    try:
        while (todo and not stop.is_set()) or workers.running:
            while todo and free_slots and not stop.is_set():
                unit, slot = todo.pop(0), free_slots.pop(0)
                process = _start(unit, root, wandb, slot, parallel, slot_envs[slot])
                workers.running[slot] = (unit, process, time.monotonic())
                for point in unit:
                    progress.started(point.run_id)
            if stop.wait(0.2):
                workers.ask_to_stop()
            for slot, (unit, returncode, seconds) in workers.finished():
                free_slots.append(slot)
                for point in unit:
                    describe = functools.partial(_log_error, root / unit[0].run_id, returncode)
                    status = record_unfinished(root, point, describe,
                                               Status.INTERRUPTED if stop.is_set() else Status.FAILED)
                    statuses[point.run_id] = status
                    progress.finished(point.run_id, status, seconds, readable_result(root / point.run_id))
                    if on_finish:
                        on_finish(point, status)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        workers.stop()
    if stop.is_set():
        raise SweepStopped(f"stopped by SIGTERM: the running workers checkpointed and stopped, "
                           f"{sum(map(len, todo))} runs were not started; run the same command again to resume")
    progress.summary()
    return statuses


class _Workers:
    """The running workers by slot: (unit, process, start time)."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[list[SweepPoint], subprocess.Popen, float]] = {}
        self._asked: set[int] = set()

    def finished(self) -> list[tuple[int, tuple[list[SweepPoint], int, float]]]:
        """The workers that exited since the last call: (slot, (unit, exit status, seconds it ran))."""
        done = [(slot, worker) for slot, worker in self.running.items() if worker[1].poll() is not None]
        for slot, _ in done:
            del self.running[slot]
        return [(slot, (unit, process.returncode, time.monotonic() - started))
                for slot, (unit, process, started) in done]

    def ask_to_stop(self) -> None:
        """SIGTERM to each running worker, once: it checkpoints and stops as preempted."""
        for _, process, _ in self.running.values():
            if process.pid not in self._asked and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                self._asked.add(process.pid)

    def stop(self) -> None:
        """Stop the workers still running (the sweep is leaving early): SIGTERM, then SIGKILL after a grace period."""
        self.ask_to_stop()
        for _, process, _ in self.running.values():
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start(unit: list[SweepPoint], root: Path, wandb: str | None, slot: int, parallel: int,
           env: dict[str, str]) -> subprocess.Popen:
    """Start a unit's worker with `env`, logging to its first point's workdir, pinned to this slot's cores."""
    workdir = root / unit[0].run_id
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / LOG_FILE).open("a")
    process = subprocess.Popen(worker_command(unit, root, wandb), stdout=log, stderr=subprocess.STDOUT, env=env)
    cores = sorted(os.sched_getaffinity(0))[slot::parallel]
    if parallel > 1 and cores:
        os.sched_setaffinity(process.pid, cores)  # before the child starts its threads, which inherit it
    return process


def worker_envs(root: Path, parallel: int, gpus: Sequence[str], env: Mapping[str, str]) -> list[dict[str, str]]:
    """Each slot's environment: a compilation cache shared by the sweep's runs, the parent's environment, the
    slot's GPU settings (`assign_gpus`), then `env`; each overriding the ones before."""
    cache = compilation_cache_env(root)
    return [merge_env(cache, os.environ, slot_gpus, env) for slot_gpus in assign_gpus(gpus, parallel)]


def _log_error(workdir: Path, returncode: int) -> str:
    """Why a process left no result: its exit status and the tail of its log."""
    log_tail = (workdir / LOG_FILE).read_text()[-2000:] if (workdir / LOG_FILE).exists() else ""
    return f"process exited with status {returncode} without a result; log tail:\n{log_tail}"
