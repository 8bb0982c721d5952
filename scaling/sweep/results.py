"""The results table: one row per evaluation point of every run under a sweep root (CSV and Parquet).

This table is the contract with `analysis`: it reads these columns and nothing else of training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from scaling.workdir.records import CONFIG_FILE, read_result
from scaling.workdir.tracking import read_metrics

COLUMNS = (
    "run_id", "sweep", "family", "width", "depth", "params", "flops_per_example", "dataset", "num_classes",
    "train_examples", "resolution", "batch_size", "step", "examples_seen", "compute", "lr", "weight_decay",
    "schedule", "seed", "is_final", "train_loss", "eval_loss", "top1_error", "top5_error", "minival_error",
    "status", "wall_seconds", "device_kind",
)


def run_dirs(root: Path) -> list[Path]:
    """Every workdir under `root` that holds a result.json, sorted."""
    return sorted(path.parent for path in root.rglob("result.json"))


def results_table(root: Path) -> pd.DataFrame:
    """Rows for every run under `root`; a run without evaluations (failed early) gets one row of its status."""
    rows = [row for workdir in run_dirs(root) for row in _run_rows(root, workdir)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_results(root: Path, out: Path | None = None) -> tuple[Path, Path, pd.DataFrame]:
    """Write `results.csv` and `results.parquet` (to `out` or the root); return their paths and the table."""
    table = results_table(root)
    stem = out.with_suffix("") if out else root / "results"
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False)
    table.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path, table


def _run_rows(root: Path, workdir: Path) -> list[dict[str, Any]]:
    result = read_result(workdir)
    config = json.loads((workdir / CONFIG_FILE).read_text()) if (workdir / CONFIG_FILE).exists() else {}
    optim, model = config.get("optim", {}), config.get("model", {})
    base = {
        "run_id": str(workdir.relative_to(root)), "sweep": config.get("wandb", {}).get("group"),
        "family": result.get("family"), "width": result.get("width") or model.get("width"),
        "depth": result.get("depth") or model.get("depth"), "params": result.get("params"),
        "flops_per_example": result.get("flops_per_example"), "dataset": result.get("dataset"),
        "num_classes": result.get("num_classes"), "train_examples": result.get("train_examples"),
        "resolution": result.get("resolution"), "batch_size": result.get("batch_size"),
        "lr": optim.get("lr"), "weight_decay": optim.get("weight_decay"), "schedule": _schedule(config),
        "seed": config.get("seed"), "status": result["status"], "wall_seconds": result.get("wall_seconds"),
        "device_kind": result.get("device_kind"),
    }
    metrics = read_metrics(workdir)
    train_lines = [line for line in metrics if line["kind"] == "train"]
    evals = [line for line in metrics if line["kind"] == "eval"]
    if not evals:
        return [{**base, "step": result.get("step", 0), "examples_seen": result.get("examples_seen", 0), "is_final": True}]
    flops = result.get("flops_per_example") or math.nan
    return [
        {
            **base, "step": line["step"], "examples_seen": line["examples_seen"],
            "compute": flops * line["examples_seen"], "is_final": index == len(evals) - 1,
            "train_loss": _latest_train_loss(train_lines, line["step"]), "eval_loss": line["eval_loss"],
            "top1_error": line["top1_error"], "top5_error": line["top5_error"],
            "minival_error": line.get("minival_error", math.nan),
        }
        for index, line in enumerate(evals)
    ]


def _latest_train_loss(train_lines: list[dict[str, Any]], step: int) -> float:
    """The training loss logged last at or before `step`."""
    losses = [line["train_loss"] for line in train_lines if line["step"] <= step]
    return losses[-1] if losses else math.nan


def _schedule(config: dict[str, Any]) -> str | None:
    """The optimizer's schedule; cooldown branches are marked `+cooldown`."""
    schedule = config.get("optim", {}).get("schedule")
    return f"{schedule}+cooldown" if schedule and config["train"].get("branch_from") else schedule
