"""What a run leaves in its workdir: `config.json` and `result.json` (the source of truth)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from scaling.errors import ConfigError

CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"


@dataclasses.dataclass
class RunResult:
    """Summary of one run. Compute is training FLOPs: forward + backward, 1 multiply-add = 2 FLOPs."""

    status: str  # running (or killed), completed, failed, diverged, interrupted (stopped from outside)
    error: str | None = None
    family: str | None = None
    model: str | None = None
    width: int | None = None
    depth: int | None = None
    params: int | None = None
    dataset: str | None = None
    num_classes: int | None = None
    train_examples: int | None = None
    resolution: int | None = None
    batch_size: int | None = None
    num_steps: int | None = None
    step: int = 0
    examples_seen: int = 0
    flops_per_example: float | None = None
    compute: float | None = None
    final_eval: dict[str, float] | None = None
    best_eval: dict[str, float] | None = None
    wall_seconds: float = 0.0
    device_kind: str | None = None
    num_devices: int | None = None
    pack_size: int = 1  # models trained together in one vmapped program (wall time is shared)
    examples_per_second: float | None = None  # median over logging windows after the first (compile, warm-up)
    mfu: float | None = None  # model FLOPs utilization at that speed (scaling.devices); None: unknown peak


def write_config(workdir: Path, config: dict[str, Any]) -> None:
    """Write config.json; refuse a workdir that holds a run of a different config (wandb settings aside)."""
    path = workdir / CONFIG_FILE
    if path.exists():
        old = json.loads(path.read_text())
        if _without_wandb(old) != _without_wandb(config):
            raise ConfigError(
                f"{workdir} holds a run with a different config ({_first_difference(old, config)}); "
                "use a new --workdir, or the same config to resume it"
            )
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_result(workdir: Path, result: RunResult) -> None:
    """Write result.json atomically."""
    temporary = workdir / (RESULT_FILE + ".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n")
    temporary.replace(workdir / RESULT_FILE)


def read_result(workdir: Path) -> dict[str, Any] | None:
    """The run's result.json as a dict, or None if it has none."""
    path = Path(workdir) / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _without_wandb(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "wandb"}


def _first_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            if a != b:
                return _first_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            return f"{prefix}{key}: {a!r} there, {b!r} now"
    return "none"
