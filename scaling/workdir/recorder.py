"""What one run of a pack records while it trains: metric lines (metrics.jsonl and wandb), checkpoints, its
status and, at the end, its result.json. Only process 0 of a multi-host run writes records; every process
writes its share of the checkpoints."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from analysis.table.contract import Status
from scaling.plan import RunPlan
from scaling.workdir import checkpoint
from scaling.workdir.records import TRACEBACK_FILE, RunResult, write_result
from scaling.workdir.tracking import Trackers, open_trackers, read_metrics


def writes_records() -> bool:
    """Whether this process writes config.json, metrics and result.json (process 0 of a multi-host run)."""
    return jax.process_index() == 0


class RunRecorder:
    """One run's records: its plan and result, its checkpoint manager and its metric trackers."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: Path, plan: RunPlan, result: RunResult,
                 since: float):
        """`since`: when the run started (time.monotonic), its earlier attempts' wall time included."""
        self.config, self.workdir, self.plan, self.result, self.since = config, workdir, plan, result, since
        self.result.__dict__.update(plan.result_fields())
        self.manager = checkpoint.checkpoint_manager(workdir, config.train.keep_checkpoints, set(plan.kept_steps))
        self.trackers = Trackers([])

    @property
    def running(self) -> bool:
        """Whether the run still trains (not diverged, preempted or finished)."""
        return self.result.status == Status.RUNNING

    def start(self, start_step: int) -> None:
        """Record the run as running from `start_step`; start metric lines there (later lines of an earlier attempt
        are dropped), wandb and TensorBoard."""
        if not writes_records():
            return
        self._record(start_step)
        self.trackers = open_trackers(self.config, self.workdir, start_step)

    def log_train(self, step: int, metrics: dict[str, float], speed: float, mfu: float | None) -> None:
        """One training window's mean metrics, learning rate and throughput."""
        self.trackers.log(step, {
            "kind": "train", "examples_seen": step * self.plan.batch_size, "train_loss": metrics["loss"],
            "train_top1_error": metrics["top1_error"], "grad_norm": metrics["grad_norm"],
            "lr": float(self.plan.learning_rates[step - 1]), "examples_per_second": speed, "mfu": mfu,
        })

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        """One evaluation's metrics (every evaluation set, named by `scaling.program.evaluation.metric_names`)."""
        self.trackers.log(step, {"kind": "eval", "examples_seen": step * self.plan.batch_size, **metrics})

    def save(self, step: int, state: Any) -> None:
        """Checkpoint `state` (arrays nothing changes: a copy) at `step` in the background; result.json says how far
        the run got and its wall time."""
        checkpoint.save_in_background(self.manager, step, state)
        if writes_records():
            self._record(step)

    def _record(self, step: int) -> None:
        self.result.step, self.result.wall_seconds = step, time.monotonic() - self.since
        write_result(self.workdir, self.result)

    def diverged(self, step: int) -> None:
        """Loss or gradients became non-finite at `step`; the checkpoints stay as they are."""
        checkpoint.wait_for_saves(self.manager)
        self.manager.wait_until_finished()
        good = self.manager.latest_step()
        fixes = "lower optim.lr or set optim.grad_clip_norm" if self.result.compute_dtype == "float32" else (
            f"lower optim.lr, set optim.grad_clip_norm, or use train.compute_dtype='float32' (it computed in "
            f"{self.result.compute_dtype})")
        self._stop(Status.DIVERGED, step, f"loss or gradient norm non-finite at step {step} (last good checkpoint: "
                                          f"{'none' if good is None else f'step {good}'}); {fixes}")

    def preempted(self, step: int) -> None:
        """Stopped at `step` (checkpointed) by SIGTERM or the scheduler's warning signal."""
        self._stop(Status.PREEMPTED, step, f"preempted at step {step} (SIGTERM or the scheduler's warning signal); "
                                          "run the same command again to resume")

    def completed(self, step: int, final_eval: dict[str, float]) -> None:
        """Trained all `step` steps; `final_eval` is the last evaluation."""
        self._stop(Status.COMPLETED, step, None)
        self.result.final_eval = final_eval

    def finish(self, compilation_cache: dict[str, int]) -> None:
        """Close checkpoints and trackers, and write result.json with the run's throughput and best evaluation."""
        checkpoint.wait_for_saves(self.manager)
        self.manager.wait_until_finished()
        self.manager.close()
        self.trackers.close()
        if not writes_records():
            return
        lines = read_metrics(self.workdir)
        windows = [line for line in lines if line["kind"] == "train"]
        result = self.result
        if windows:
            steady = windows[1:] or windows
            result.examples_per_second = float(np.median([line["examples_per_second"] for line in steady]))
            mfus = [line["mfu"] for line in steady if line.get("mfu") is not None]
            result.mfu = float(np.median(mfus)) if mfus else None
        result.best_eval = min((line for line in lines if line["kind"] == "eval"),
                               key=lambda line: line["top1_error"], default=None)
        result.examples_seen = result.step * self.plan.batch_size
        result.compute = result.flops_per_example * result.examples_seen
        result.compilation_cache = compilation_cache
        result.wall_seconds = time.monotonic() - self.since
        write_result(self.workdir, result)

    def _stop(self, status: str, step: int, error: str | None) -> None:
        self.result.status, self.result.step, self.result.error = status, step, error


def record_failure(workdir: Path, result: RunResult, since: float, error: BaseException) -> None:
    """Record the run as failed, or as interrupted (resumable) when it was stopped from outside (`since`: when the
    run started, earlier attempts included)."""
    stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
    result.status = Status.INTERRUPTED if stopped else Status.FAILED
    result.error = f"{type(error).__name__}: {error}"
    result.wall_seconds = time.monotonic() - since
    if writes_records():
        write_result(workdir, result)
        keep_traceback(workdir, "".join(traceback.format_exception(error)))


def keep_traceback(workdir: Path, text: str) -> None:
    """Append a traceback, with the time, to the workdir's traceback.txt (the console gets one line, or none)."""
    with open(workdir / TRACEBACK_FILE, "a") as file:
        file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{text}")


@contextlib.contextmanager
def background_errors_to(workdir: Path) -> Iterator[None]:
    """Inside the block, tracebacks that background threads would print (orbax's writers after a failed save,
    whose error reaches the loop through the checkpoint manager anyway) go to the workdir's traceback.txt. When
    the block fails, they keep going there (with asyncio's error log): those threads outlive the error."""
    if not writes_records():
        yield
        return

    def keep(kind: type[BaseException], value: BaseException, trace: Any) -> None:
        keep_traceback(workdir, "".join(traceback.format_exception(kind, value, trace)))

    def keep_hooked(hook: Any) -> None:
        keep(hook.exc_type, hook.exc_value, hook.exc_traceback)

    previous = sys.excepthook, threading.excepthook, sys.unraisablehook
    sys.excepthook, threading.excepthook, sys.unraisablehook = keep, keep_hooked, keep_hooked
    try:
        yield
    except BaseException:
        asyncio_log = logging.getLogger("asyncio")
        asyncio_log.addHandler(logging.FileHandler(workdir / TRACEBACK_FILE))
        asyncio_log.propagate = False
        raise
    sys.excepthook, threading.excepthook, sys.unraisablehook = previous

