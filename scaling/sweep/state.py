"""Where a sweep stands: the state of each point's workdir under a root, and what its runs share."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.table.contract import FINAL_STATUSES, Status
from scaling.errors import BusyError, RecordError
from scaling.sweep.spec import SweepPoint
from scaling.workdir.records import RunResult, claim_workdir, read_result, write_result

COMPILATION_CACHE = ".jax_cache"  # runs that differ only in data size or schedule share compiled steps
SWEEP_LOCK = ".sweep.lock"  # held by the one `scaling sweep run` working on a root
PENDING, DAMAGED = "pending", "damaged"  # a point never started; one whose result.json cannot be read


def point_status(root: Path, point: SweepPoint) -> str:
    """`pending` (never started), `damaged` (its result.json cannot be read, reported: the point runs again), or
    the status in its result.json (`running` if it was killed)."""
    try:
        result = read_result(root / point.run_id)
    except RecordError as error:
        print(f"warning: {error}", file=sys.stderr)
        return DAMAGED
    return PENDING if result is None else result["status"]


def readable_result(workdir: Path) -> dict[str, Any] | None:
    """The run's result.json, or None when it has none or it cannot be read."""
    try:
        return read_result(workdir)
    except RecordError:
        return None


def is_done(root: Path, point: SweepPoint) -> bool:
    """True when the point has a final result and must not run again."""
    return point_status(root, point) in FINAL_STATUSES


def record_unfinished(root: Path, point: SweepPoint, describe_error: Callable[[], str],
                      status: str = Status.FAILED) -> str:
    """The status a finished process recorded; one that recorded none (or an unreadable one) is recorded with
    `status` (failed, or interrupted when the sweep stopped it) and `describe_error()`. A workdir another process
    still writes (e.g. a `scaling train` started by hand) is left to it: `running`."""
    workdir = root / point.run_id
    try:
        with claim_workdir(workdir):
            result = readable_result(workdir)
            if result is not None and result["status"] != Status.RUNNING:
                return result["status"]
            earlier = result or {}
            write_result(workdir, RunResult(status=status, error=describe_error(), step=earlier.get("step", 0),
                                            wall_seconds=earlier.get("wall_seconds", 0.0),
                                            attempts=earlier.get("attempts", 1)))
    except BusyError as error:
        print(f"warning: {error}; its record is left to that process", file=sys.stderr)
        return Status.RUNNING
    return status


def compilation_cache_env(root: Path) -> dict[str, str]:
    """Environment that points JAX's persistent compilation cache at the sweep's shared folder."""
    return {
        "JAX_COMPILATION_CACHE_DIR": str((root / COMPILATION_CACHE).absolute()),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
