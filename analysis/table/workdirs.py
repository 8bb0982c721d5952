"""Rows of the results table read straight from a folder of run workdirs (result.json + metrics.jsonl)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.table.contract import RESULT_COLUMNS
from analysis.errors import AnalysisError

RESULT_FILE, METRICS_FILE, CONFIG_FILE = "result.json", "metrics.jsonl", "config.json"


def read_workdirs(root: Path) -> pd.DataFrame:
    """One row per eval line of every run under `root` (recursively); run_id is the folder relative to root."""
    workdirs = sorted(path.parent for path in Path(root).rglob(RESULT_FILE))
    if not workdirs:
        raise AnalysisError(f"{root} holds no run workdir (no result.json below it); give a sweep root or a table")
    rows = [row for workdir in workdirs for row in _run_rows(Path(root), workdir)]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _run_rows(root: Path, workdir: Path) -> list[dict[str, Any]]:
    """The rows of one run: one per eval line, or one from result.json's final_eval if it logged none."""
    result = _read_json(workdir / RESULT_FILE)
    config = _read_json(workdir / CONFIG_FILE) if (workdir / CONFIG_FILE).exists() else {}
    optim = config.get("optim", {})
    run_id = workdir.relative_to(root).as_posix()
    base = {
        "run_id": run_id, "sweep": config.get("wandb", {}).get("group") or root.name,
        **{key: result.get(key) for key in (
            "family", "width", "depth", "params", "flops_per_example", "dataset", "num_classes",
            "train_examples", "resolution", "batch_size", "status", "wall_seconds", "device_kind")},
        "lr": optim.get("lr"), "weight_decay": optim.get("weight_decay"), "schedule": optim.get("schedule"),
        "seed": config.get("seed"), "minival_error": math.nan,
    }
    lines = _read_metrics(workdir / METRICS_FILE)
    evals = [line for line in lines if line.get("kind") == "eval"]
    if not evals:
        final = result.get("final_eval") or {}
        evals = [{"step": result.get("step", 0), "examples_seen": result.get("examples_seen", 0), **final}]
    train = [line for line in lines if line.get("kind") == "train"]
    flops = result.get("flops_per_example") or math.nan
    return [
        {
            **base, "step": line["step"], "examples_seen": line["examples_seen"],
            "compute": flops * line["examples_seen"], "is_final": index == len(evals) - 1,
            "train_loss": _last_train_loss(train, line["step"]),
            **{key: line.get(key, math.nan) for key in ("eval_loss", "top1_error", "top5_error")},
        }
        for index, line in enumerate(evals)
    ]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AnalysisError(f"{path} is not valid JSON ({error}); rerun or remove that run") from error


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise AnalysisError(f"{path} has a line that is not JSON ({error}); rerun or remove that run") from error


def _last_train_loss(train_lines: list[dict[str, Any]], step: int) -> float:
    """The training loss logged last at or before `step` (NaN if none)."""
    losses = [line["train_loss"] for line in train_lines if line["step"] <= step and "train_loss" in line]
    return losses[-1] if losses else math.nan
