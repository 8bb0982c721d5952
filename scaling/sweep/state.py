"""Where a sweep stands: the state of each point's workdir under a root."""

from __future__ import annotations

from pathlib import Path

from scaling.records import read_result
from scaling.sweep.spec import SweepPoint

FINAL_STATUSES = ("completed", "diverged")  # rerunning cannot change these; failed runs are retried


def point_status(root: Path, point: SweepPoint) -> str:
    """`pending` (never started), or the status in its result.json (`running` if it was interrupted)."""
    result = read_result(root / point.run_id)
    return "pending" if result is None else result["status"]


def is_done(root: Path, point: SweepPoint) -> bool:
    """True when the point has a final result and must not run again."""
    return point_status(root, point) in FINAL_STATUSES
