"""The sweep's progress display: runs done, running, failed, and the ETA."""

from __future__ import annotations

import datetime
import sys
import time
from typing import Any

from analysis.table.contract import Status


class SweepProgress:
    """Prints one line per started and finished run, with counts and an ETA from the finished runs."""

    def __init__(self, total: int, already_done: int):
        self.total, self.done, self.failed, self.running = total, already_done, 0, 0
        self.start = time.monotonic()
        self.finished_here = 0
        print(
            f"sweep: {total} runs, {already_done} already done, {total - already_done} to run",
            file=sys.stderr, flush=True,
        )

    def started(self, run_id: str) -> None:
        """Note that a run started."""
        self.running += 1
        self._line(f"started {run_id}")

    def finished(self, run_id: str, status: str, seconds: float, result: dict[str, Any] | None) -> None:
        """Note that a run ended with `status`."""
        self.running -= 1
        self.finished_here += 1
        self.done += 1
        self.failed += status in (Status.FAILED, Status.DIVERGED)
        error = (result or {}).get("final_eval") or {}
        detail = f", top-1 error {error['top1_error']:.4f}" if "top1_error" in error else ""
        self._line(f"{status} {run_id} in {seconds:.0f}s{detail}")

    def summary(self) -> None:
        """Print the final counts."""
        self._line("sweep finished")

    def _line(self, event: str) -> None:
        elapsed = time.monotonic() - self.start
        remaining = self.total - self.done
        if self.finished_here:
            eta = str(datetime.timedelta(seconds=round(elapsed / self.finished_here * remaining)))
        else:
            eta = "?"
        print(
            f"[{self.done}/{self.total} done, {self.running} running, {self.failed} failed, ETA {eta}] {event}",
            file=sys.stderr, flush=True,
        )
