"""Progress of a long data job (a cache build, a copy, a conversion): throttled lines with rate and ETA.

A line (none when `quiet`) is printed at most every `every_s` seconds of `clock` (at the first update past
that, so a job shorter than `every_s` prints only its closing line), e.g.
`  cached 409,600/1,281,167 images (32.0%), 2,345 images/s, ETA 0:06:12`, and `finish` closes with the total
time and mean rate. Lines go to stderr (flushed: a batch job's log shows them as they come).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """E.g. '1:02:03' (hours:minutes:seconds, rounded to the second)."""
    whole = max(round(seconds), 0)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Progress:
    """Counts `total` items of a job (`verb` e.g. 'cached', `unit` e.g. 'images') and reports rate and ETA."""

    def __init__(self, verb: str, total: int, unit: str, *, every_s: float = 5.0,
                 clock: Callable[[], float] | None = None, stream: TextIO | None = None, quiet: bool = False):
        self.verb, self.total, self.unit, self.every_s = verb, total, unit, every_s
        self.clock, self.stream, self.quiet = clock or time.monotonic, stream, quiet
        self.start = self.last = self.clock()

    def update(self, done: int) -> None:
        """`done` of `total` items are finished: print a line if `every_s` passed since the last one."""
        now = self.clock()
        if now - self.last < self.every_s or done >= self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = format_duration((self.total - done) / rate) if rate > 0 else "unknown"
        self._print(f"  {self.verb} {done:,}/{self.total:,} {self.unit} ({100 * done / self.total:.1f}%), "
                    f"{rate:,.0f} {self.unit}/s, ETA {eta}")

    def finish(self) -> None:
        """Print the closing line: all `total` items, the time they took and the mean rate."""
        elapsed = self.clock() - self.start
        self._print(f"  {self.verb} {self.total:,} {self.unit} in {format_duration(elapsed)} "
                    f"({self.total / max(elapsed, 1e-9):,.0f} {self.unit}/s)")

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream or sys.stderr, flush=True)
