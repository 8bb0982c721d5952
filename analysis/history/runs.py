"""Reproductions of historic models: the run folders whose config.json carries a top-level `reference`
object (the published result the config's recipe is meant to reproduce), read next to their result.json.

The contract with the history training configs (configs/history/*.py) is the `reference` object:
    {"name": "AlexNet (Krizhevsky et al. 2012)", "top1_error": 0.375, "top5_error": 0.17,
     "source": "...", "year": 2012}
errors as fractions in [0, 1]; `top5_error`, `source`, `year` and `compute` (the published training FLOPs,
which places the published point on the compute axis) may be left out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import CONFIG_FILE, RESULT_FILE
from analysis.table.workdirs import read_json, run_dirs

COLUMNS = ("run", "name", "status", "dataset", "resolution", "epochs", "steps", "compute", "top1_error",
           "top5_error", "published_top1_error", "published_top5_error", "published_compute", "source", "year")


def run_folders(root: Path) -> list[Path]:
    """Every folder under `root` (itself included) holding both config.json and result.json."""
    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"{root} is not a folder; give --runs the folder your history runs were written under")
    return [folder for folder in run_dirs(root) if (folder / CONFIG_FILE).is_file()]


def reference_runs(root: Path) -> pd.DataFrame:
    """One row per run under `root` whose config has a `reference`: reproduced against published (COLUMNS)."""
    root = Path(root)
    folders = run_folders(root)
    if not folders:
        raise AnalysisError(f"{root} holds no run folder (a folder with both {CONFIG_FILE} and {RESULT_FILE}); "
                            "give the folder that `scaling train --workdir` or `scaling sweep run --root` wrote to")
    rows = []
    for folder in folders:
        config = read_json(folder / CONFIG_FILE)
        if "reference" in config:
            rows.append(_row(root, folder, config, read_json(folder / RESULT_FILE)))
    if not rows:
        raise AnalysisError(f"none of the {len(folders)} run(s) under {root} has a `reference` object in its "
                            f"{CONFIG_FILE}; train a history config (configs/history/*.py), which records the "
                            "published result it reproduces")
    return pd.DataFrame(rows, columns=list(COLUMNS))


def format_comparison(frame: pd.DataFrame) -> str:
    """The reproductions as a text table: reproduced, published and their difference in points of error."""
    header = ["model", "status", "dataset", "res", "epochs", "steps", "compute", "top-1 ours", "published",
              "diff", "top-5 ours", "published", "diff", "run"]
    lines = [[
        row.name, row.status, row.dataset, _integer(row.resolution), _number(row.epochs, "{:.3g}"),
        _integer(row.steps), _number(row.compute, "{:.2e}"), _percent(row.top1_error),
        _percent(row.published_top1_error), _difference(row.top1_error, row.published_top1_error),
        _percent(row.top5_error), _percent(row.published_top5_error),
        _difference(row.top5_error, row.published_top5_error), row.run,
    ] for row in frame.itertuples(index=False)]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    text = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in (header, *lines)]
    return "\n".join([*text, "errors in %; diff = ours - published, in points (negative: better than published)"])


def _row(root: Path, folder: Path, config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    reference = config["reference"]
    where = folder / CONFIG_FILE
    if not isinstance(reference, dict) or not isinstance(reference.get("name"), str) or not reference["name"]:
        raise AnalysisError(f"{where}: `reference` must be an object with at least a `name` (the published model)")
    final = result.get("final_eval") or {}
    data, train = config.get("data") or {}, config.get("train") or {}
    seen, examples = result.get("examples_seen"), result.get("train_examples")
    epochs = seen / examples if seen and examples else train.get("epochs")
    return {
        "run": folder.relative_to(root).as_posix() or ".", "name": reference["name"],
        "status": result.get("status", "unknown"), "dataset": data.get("name") or result.get("dataset"),
        "resolution": result.get("resolution") or data.get("resolution"), "epochs": epochs,
        "steps": result.get("step"), "compute": result.get("compute"),
        "top1_error": _fraction(final.get("top1_error"), folder / RESULT_FILE, "final_eval.top1_error"),
        "top5_error": _fraction(final.get("top5_error"), folder / RESULT_FILE, "final_eval.top5_error"),
        "published_top1_error": _fraction(reference.get("top1_error"), where, "reference.top1_error"),
        "published_top5_error": _fraction(reference.get("top5_error"), where, "reference.top5_error"),
        "published_compute": _positive(reference.get("compute"), where, "reference.compute"),
        "source": reference.get("source"), "year": reference.get("year"),
    }


def _fraction(value: Any, path: Path, field: str) -> float:
    """An error as a fraction in [0, 1] (NaN if absent)."""
    if value is None:
        return math.nan
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise AnalysisError(f"{path}: {field} = {value!r} is not an error fraction in [0, 1] "
                            "(write 0.375 for 37.5%)")
    return float(value)


def _positive(value: Any, path: Path, field: str) -> float:
    if value is None:
        return math.nan
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise AnalysisError(f"{path}: {field} = {value!r} must be a positive number of training FLOPs")
    return float(value)


def _percent(value: float) -> str:
    return "-" if _missing(value) else f"{100 * value:.2f}"


def _difference(ours: float, published: float) -> str:
    return "-" if _missing(ours) or _missing(published) else f"{100 * (ours - published):+.2f}"


def _number(value: Any, pattern: str) -> str:
    return "-" if _missing(value) else pattern.format(float(value))


def _integer(value: Any) -> str:
    return "-" if _missing(value) else str(int(value))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
