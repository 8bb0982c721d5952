"""The sweep's progress display: runs done, running, failed, and the ETA."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Mapping
from typing import Any

from analysis.table.contract import Status


class SweepProgress:
    """Prints one line per started and finished run, with counts and an ETA.

    The ETA weighs the runs to run by their planned work (`work`: run id -> the FLOPs it has to train, a cooldown
    branch only its own steps; without it, one unit each): the work left at the rate of the work finished here,
    so a sweep that ends with its largest models is not promised done after its small ones.
    """

    def __init__(self, total: int, already_done: int, work: Mapping[str, float] | None = None):
        self.total, self.done, self.failed, self.running = total, already_done, 0, 0
        self.start = time.monotonic()
        self.work = dict(work or {})  # of the runs to run here
        self.work_left = sum(self.work.values()) if self.work else float(total - already_done)
        self.work_done = 0.0
        print(
            f"sweep: {total} runs, {already_done} already done, {total - already_done} to run",
            file=sys.stderr, flush=True,
        )

    @classmethod
    def of_launch(cls, total: int, todo: list[list[Any]], work: Mapping[str, float] | None) -> SweepProgress:
        """The display of a launch of `total` points whose launch units `todo` (lists of points) are still to run."""
        to_run = [point.run_id for unit in todo for point in unit]
        return cls(total, total - len(to_run), {run_id: work[run_id] for run_id in to_run} if work else None)

    def started(self, run_id: str) -> None:
        """Note that a run started."""
        self.running += 1
        self._line(f"started {run_id}")

    def finished(self, run_id: str, status: str, seconds: float, result: dict[str, Any] | None) -> None:
        """Note that a run ended with `status`."""
        self.running -= 1
        self.work_done += self._work(run_id)
        self.done += 1
        self.failed += status in (Status.FAILED, Status.DIVERGED)
        error = (result or {}).get("final_eval") or {}
        detail = f", top-1 error {error['top1_error']:.4f}" if "top1_error" in error else ""
        self._line(f"{status} {run_id} in {seconds:.0f}s{detail}")

    def summary(self) -> None:
        """Print the final counts."""
        self._line("sweep finished")

    def _work(self, run_id: str) -> float:
        return self.work[run_id] if self.work else 1.0

    def _line(self, event: str) -> None:
        elapsed = time.monotonic() - self.start
        if self.work_done > 0:
            remaining = max(self.work_left - self.work_done, 0.0)
            eta = str(datetime.timedelta(seconds=round(elapsed / self.work_done * remaining)))
        else:
            eta = "?"
        print(
            f"[{self.done}/{self.total} done, {self.running} running, {self.failed} failed, ETA {eta}] {event}",
            file=sys.stderr, flush=True,
        )
