"""A one-line progress display for long runs: step, loss, throughput and ETA."""

from __future__ import annotations

import datetime
import sys
import time
from typing import TextIO


class ProgressLine:
    """Prints `step s/N (p%) | loss | examples/s | ETA` lines to a stream (stderr by default; none if silent)."""

    def __init__(self, total_steps: int, start_step: int, stream: TextIO | None = None, silent: bool = False):
        self.silent = silent
        self.total_steps = total_steps
        self.start_step = start_step
        self.start_time = time.monotonic()
        self.stream = stream or sys.stderr

    def update(self, step: int, loss: float, examples_per_second: float, extra: str = "") -> None:
        """Print the line for `step`; the ETA extrapolates the rate since this process started."""
        elapsed = time.monotonic() - self.start_time
        done = step - self.start_step
        remaining = (self.total_steps - step) * elapsed / done if done else float("nan")
        eta = str(datetime.timedelta(seconds=round(remaining))) if remaining == remaining else "?"
        percent = 100.0 * step / self.total_steps
        line = (
            f"step {step}/{self.total_steps} ({percent:.0f}%) | loss {loss:.4f} | "
            f"{examples_per_second:,.0f} examples/s | ETA {eta}"
        )
        self.message(line + (f" | {extra}" if extra else ""))

    def message(self, text: str) -> None:
        """Print a free-form status line."""
        if not self.silent:
            print(text, file=self.stream, flush=True)
