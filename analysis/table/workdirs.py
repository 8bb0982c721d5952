"""The one reader of run workdirs: the results table built from each run's result.json, config.json and
metrics.jsonl (`scaling sweep results` writes this table; `load_results` reads a folder through it).

One row per eval line of every run under the root (recursively), or, for a run that logged none, one row
from result.json (its final_eval, if any). Columns are RESULT_COLUMNS; those not read from result.json:
- run_id: the workdir relative to the root (POSIX separators);
- sweep: the config's wandb.group (a sweep sets it to its NAME), else the root folder's name;
- schedule: the config's optim.schedule, with `+cooldown` appended for a cooldown branch (train.branch_from set);
- lr, weight_decay, seed: from the config; width and depth from result.json, else the config's model;
- compute: flops_per_example * examples_seen; train_loss: the last one logged at or before the row's step;
- minival_error: the eval line's minival_error (NaN for a run without a minival, data.minival_per_class=0);
- eval_examples: result.json's eval_examples, the evaluation split's size (NaN where result.json does not say;
  the analysis floors an error of exactly 0 at half of one example, 0.5/eval_examples).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import CONFIG_FILE, METRICS_FILE, RESULT_COLUMNS, RESULT_FILE

EVAL_COLUMNS = ("eval_loss", "top1_error", "top5_error", "minival_error")
RESULT_KEYS = ("family", "params", "flops_per_example", "dataset", "num_classes", "train_examples", "eval_examples",
               "resolution", "batch_size", "status", "wall_seconds", "device_kind")


def run_dirs(root: Path) -> list[Path]:
    """Every workdir under `root` (itself included) that holds a result.json, sorted."""
    return sorted(path.parent for path in Path(root).rglob(RESULT_FILE))


def read_workdirs(root: Path, *, allow_empty: bool = False) -> pd.DataFrame:
    """The results table of every run under `root`; a root without runs is an error unless `allow_empty`."""
    root = Path(root)
    workdirs = run_dirs(root)
    if not workdirs and not allow_empty:
        raise AnalysisError(f"{root} holds no run workdir (no {RESULT_FILE} below it); give a sweep root or a table")
    rows = [row for workdir in workdirs for row in _run_rows(root, workdir)]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; anything else is an AnalysisError naming the file."""
    try:
        value = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise AnalysisError(f"{path} is not valid JSON ({error}); rerun or remove that run") from error
    if not isinstance(value, dict):
        raise AnalysisError(f"{path} holds a {type(value).__name__}, not a JSON object; rerun or remove that run")
    return value


def read_metrics(workdir: Path) -> list[dict[str, Any]]:
    """The run's metrics.jsonl lines in order (none if it has no such file)."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise AnalysisError(f"{path} has a line that is not JSON ({error}); rerun or remove that run") from error


def _run_rows(root: Path, workdir: Path) -> list[dict[str, Any]]:
    """The rows of one run: one per eval line, or one from result.json's final_eval if it logged none."""
    result = read_json(workdir / RESULT_FILE)
    config = read_json(workdir / CONFIG_FILE) if (workdir / CONFIG_FILE).exists() else {}
    optim, model = config.get("optim") or {}, config.get("model") or {}
    base = {
        "run_id": workdir.relative_to(root).as_posix(), "sweep": (config.get("wandb") or {}).get("group") or root.name,
        **{key: result.get(key) for key in RESULT_KEYS},
        "width": result.get("width") or model.get("width"), "depth": result.get("depth") or model.get("depth"),
        "lr": optim.get("lr"), "weight_decay": optim.get("weight_decay"), "schedule": _schedule(config),
        "seed": config.get("seed"),
    }
    lines = read_metrics(workdir)
    evals = [line for line in lines if line.get("kind") == "eval"]
    if not evals:
        evals = [{"step": result.get("step", 0), "examples_seen": result.get("examples_seen", 0),
                  **(result.get("final_eval") or {})}]
    train = [line for line in lines if line.get("kind") == "train"]
    flops = result.get("flops_per_example") or math.nan
    return [
        {
            **base, "step": line["step"], "examples_seen": line["examples_seen"],
            "compute": flops * line["examples_seen"], "is_final": index == len(evals) - 1,
            "train_loss": _last_train_loss(train, line["step"]),
            **{key: line.get(key, math.nan) for key in EVAL_COLUMNS},
        }
        for index, line in enumerate(evals)
    ]


def _schedule(config: dict[str, Any]) -> str | None:
    """The optimizer's schedule; a cooldown branch (train.branch_from set) is marked `+cooldown`."""
    schedule = (config.get("optim") or {}).get("schedule")
    branched = (config.get("train") or {}).get("branch_from")
    return f"{schedule}+cooldown" if schedule and branched else schedule


def _last_train_loss(train_lines: list[dict[str, Any]], step: int) -> float:
    """The training loss logged last at or before `step` (NaN if none)."""
    losses = [line["train_loss"] for line in train_lines if line["step"] <= step and "train_loss" in line]
    return losses[-1] if losses else math.nan
