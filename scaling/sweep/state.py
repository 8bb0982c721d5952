"""Where a sweep stands: the state of each point's workdir under a root, and what its runs share."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from analysis.table.contract import FINAL_STATUSES, Status
from scaling.errors import BusyError, ConfigError, RecordError
from scaling.sweep.spec import SweepPoint
from scaling.workdir.records import RunResult, claim_workdir, read_result, write_result

COMPILATION_CACHE = ".jax_cache"  # runs that differ only in data size or schedule share compiled steps
SWEEP_LOCK = ".sweep.lock"  # held by the one `scaling sweep run` working on a root
PENDING, DAMAGED = "pending", "damaged"  # a point never started; one whose result.json cannot be read
# jax's GPU memory fraction and its deprecated name: jax reads either, and refuses both together.
MEM_FRACTION_NAMES = ("XLA_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_MEM_FRACTION")


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


def parse_env(items: Iterable[str]) -> dict[str, str]:
    """`--env KEY=VALUE` arguments as a mapping (a later KEY wins). ConfigError for one that is not KEY=VALUE with
    KEY a shell variable name, or that sets CUDA_VISIBLE_DEVICES (the launchers give out the GPUs)."""
    env = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"--env {item!r} is not KEY=VALUE with KEY a variable name (letters, digits, _); "
                              "e.g. --env XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true")
        if key == "CUDA_VISIBLE_DEVICES":
            raise ConfigError("--env CUDA_VISIBLE_DEVICES: the launchers give each worker its GPUs; set "
                              "CUDA_VISIBLE_DEVICES in the shell that runs `scaling sweep run` to choose the GPUs "
                              "the local launcher shares out, or --gpus-per-node for Slurm")
        env[key] = value
    return env


def superseded(env: Mapping[str, str]) -> list[str]:
    """The variables setting `env` replaces besides its own: a memory fraction under one of jax's names
    (MEM_FRACTION_NAMES) replaces one under the other."""
    return [name for name in MEM_FRACTION_NAMES if name not in env] if env.keys() & set(MEM_FRACTION_NAMES) else []


def merge_env(*layers: Mapping[str, str]) -> dict[str, str]:
    """The layers of an environment in one, later layers winning (see `superseded`)."""
    env: dict[str, str] = {}
    for layer in layers:
        for name in superseded(layer):
            env.pop(name, None)
        env.update(layer)
    return env
