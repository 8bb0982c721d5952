"""Where a sweep stands: the state of each point's workdir under a root, and what its runs share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from analysis.table.contract import FINAL_STATUSES, Status
from scaling.sweep.spec import SweepPoint
from scaling.workdir.records import RunResult, read_result, write_result

COMPILATION_CACHE = ".jax_cache"  # runs that differ only in data size or schedule share compiled steps


def point_status(root: Path, point: SweepPoint) -> str:
    """`pending` (never started), or the status in its result.json (`running` if it was killed)."""
    result = read_result(root / point.run_id)
    return "pending" if result is None else result["status"]


def is_done(root: Path, point: SweepPoint) -> bool:
    """True when the point has a final result and must not run again."""
    return point_status(root, point) in FINAL_STATUSES


def record_unfinished(root: Path, point: SweepPoint, describe_error: Callable[[], str]) -> str:
    """The status a finished process recorded; one that recorded none is recorded as failed."""
    workdir = root / point.run_id
    result = read_result(workdir)
    if result is not None and result["status"] != Status.RUNNING:
        return result["status"]
    workdir.mkdir(parents=True, exist_ok=True)
    write_result(workdir, RunResult(status=Status.FAILED, error=describe_error()))
    return Status.FAILED


def compilation_cache_env(root: Path) -> dict[str, str]:
    """Environment that points JAX's persistent compilation cache at the sweep's shared folder."""
    return {
        "JAX_COMPILATION_CACHE_DIR": str((root / COMPILATION_CACHE).absolute()),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
