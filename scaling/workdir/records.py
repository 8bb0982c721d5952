"""What a run leaves in its workdir: `config.json` and `result.json` (the source of truth), and the lock that
keeps a workdir to one writer."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.files import write_atomically
from analysis.table.contract import CONFIG_FILE, RESULT_FILE
from analysis.table.workdirs import read_json
from scaling.config.defaults import FIELDS
from scaling.errors import ConfigError, RecordError
from scaling.locks import claim_folder
from scaling.models import MODEL_NAMES, older_run_knobs

LOCK_FILE = ".lock"  # held (flock) by the one process that writes the workdir's records
TRACEBACK_FILE = "traceback.txt"  # the tracebacks of failed attempts, appended (the console gets one line)


@dataclasses.dataclass
class RunResult:
    """Summary of one run. Compute is training FLOPs: forward + backward, 1 multiply-add = 2 FLOPs."""

    status: str  # one of analysis.table.contract.Status
    error: str | None = None
    family: str | None = None
    model: str | None = None
    width: int | None = None
    depth: int | None = None
    params: int | None = None
    dataset: str | None = None
    num_classes: int | None = None
    train_examples: int | None = None
    eval_examples: int | None = None  # of the evaluation split in the run's classes (sets the error's resolution)
    resolution: int | None = None
    batch_size: int | None = None
    num_steps: int | None = None
    step: int = 0
    examples_seen: int = 0
    flops_per_example: float | None = None
    compute: float | None = None
    final_eval: dict[str, float] | None = None
    best_eval: dict[str, float] | None = None
    wall_seconds: float = 0.0  # of every attempt together (a resumed run adds its attempts)
    attempts: int = 1  # times the run was started, resumes included
    device_kind: str | None = None
    num_devices: int | None = None
    compute_dtype: str | None = None  # what it computed in: train.compute_dtype resolved on its devices
    pack_size: int = 1  # models trained together in one vmapped program (wall time is shared)
    examples_per_second: float | None = None  # median over logging windows after the first (compile, warm-up)
    mfu: float | None = None  # model FLOPs utilization at that speed against the chip's bfloat16 dense peak, whatever
    # the compute dtype (scaling.runtime.devices.mfu_peak); None: unknown peak
    compilation_cache: dict[str, int] | None = None  # persistent-cache hits and misses of this attempt


RESULT_FIELDS = frozenset(field.name for field in dataclasses.fields(RunResult))


def claim_workdir(workdir: Path, *, lock: bool = True) -> contextlib.AbstractContextManager[None]:
    """Create `workdir` and, with `lock`, hold its lock inside the block (see scaling.locks.claim_folder)."""
    return claim_folder(workdir, f"workdir {workdir}", LOCK_FILE if lock else None)


def write_config(workdir: Path, config: dict[str, Any]) -> None:
    """Write config.json; refuse a workdir that holds a run of a different config (`check_config`)."""
    check_config(workdir, config)
    write_atomically(workdir / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")


def check_config(workdir: Path, config: dict[str, Any]) -> None:
    """Raise ConfigError if the workdir holds a run of a different config (wandb, mesh and cache aside)."""
    path = workdir / CONFIG_FILE
    if path.exists():
        old = _read(path, f"delete it to adopt this config (the checkpoints in {workdir} are kept), or use a new "
                          "--workdir")
        old = _with_later_keys(old)
        if _identity(old) != _identity(config):
            raise ConfigError(
                f"{workdir} holds a run with a different config "
                f"({_first_difference(_identity(old), _identity(config))}); "
                "use a new --workdir, or the same config to resume it"
            )


def write_result(workdir: Path, result: RunResult) -> None:
    """Write result.json atomically."""
    write_atomically(workdir / RESULT_FILE, json.dumps(dataclasses.asdict(result), indent=2) + "\n")


def read_result(workdir: Path) -> dict[str, Any] | None:
    """The run's result.json as a dict, or None if it has none; RecordError naming the file if it is damaged."""
    path = Path(workdir) / RESULT_FILE
    if not path.exists():
        return None
    result = _read(path, "run the point again (it resumes from its checkpoints) or remove the file")
    if "status" not in result:
        raise RecordError(f"{path} has no status; run the point again (it resumes from its checkpoints) or remove "
                          "the file")
    return result


def _read(path: Path, fix: str) -> dict[str, Any]:
    """A JSON object from `path`; RecordError naming the file and `fix` if it is unreadable or damaged."""
    try:
        return read_json(path)
    except (AnalysisError, OSError) as error:
        message = str(error).split("; ")[0] if isinstance(error, AnalysisError) else f"{path} cannot be read ({error})"
        raise RecordError(f"{message}; {fix}") from None


def _with_later_keys(config: dict[str, Any]) -> dict[str, Any]:
    """A config.json written before some keys existed, with those keys at their defaults (what the run did)."""
    config = json.loads(json.dumps(config))
    for dotted, field in FIELDS.items():
        *parents, leaf = dotted.split(".")
        section = config
        for name in parents:
            section = section.setdefault(name, {})
        section.setdefault(leaf, list(field.default) if isinstance(field.default, tuple) else field.default)
    model = config.get("model", {})
    if model.get("name") in MODEL_NAMES:
        for key, value in older_run_knobs(model["name"]).items():
            model.setdefault(key, list(value) if isinstance(value, tuple) else value)
    return config


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """What makes a run this run: what changes its computation. Not its trackers (wandb, TensorBoard), its mesh, its
    compilation cache, or where its data lives (a preempted run may resume on another slice, with its data moved)."""
    train = {key: value for key, value in config.get("train", {}).items() if key != "compilation_cache_dir"}
    places = ("data_dir", "cache_dir", "local_cache_dir")
    data = {key: value for key, value in config.get("data", {}).items() if key not in places}
    kept = {key: value for key, value in config.items() if key not in ("wandb", "tensorboard", "mesh")}
    return kept | {"train": train, "data": data}


def _first_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            if a != b:
                return _first_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            return f"{prefix}{key}: {a!r} there, {b!r} now"
    return "none"
