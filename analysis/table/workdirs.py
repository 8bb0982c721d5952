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
The others are result.json's own, empty where it lacks them (e.g. compute_dtype, "float32" or "bfloat16", in a
result.json written before it was recorded).
A run whose records cannot be read is left out with a warning naming the file (see `read_workdirs`), so one
broken folder does not hide the other runs.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import CONFIG_FILE, METRICS_FILE, RESULT_COLUMNS, RESULT_FILE

EVAL_COLUMNS = ("eval_loss", "top1_error", "top5_error", "minival_error")
RESULT_KEYS = ("family", "params", "flops_per_example", "dataset", "num_classes", "train_examples", "eval_examples",
               "resolution", "batch_size", "status", "wall_seconds", "device_kind", "compute_dtype")
FIX = "rerun that point (scaling sweep run) or remove the run's folder"  # for a run whose records are unreadable


def print_warning(message: str) -> None:
    """`message` as one `warning: ...` line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def run_dirs(root: Path) -> list[Path]:
    """Every workdir under `root` (itself included) that holds a result.json, sorted."""
    return sorted(path.parent for path in Path(root).rglob(RESULT_FILE))


def run_id(root: Path, workdir: Path) -> str:
    """The workdir relative to the root, with POSIX separators: the table's run_id."""
    return Path(workdir).relative_to(root).as_posix()


def foreign_runs(root: Path, run_ids: Collection[str]) -> list[str]:
    """The run ids of the workdirs under `root` that are not among `run_ids`, sorted."""
    return sorted({run_id(root, workdir) for workdir in run_dirs(root)} - set(run_ids))


def read_workdirs(root: Path, *, allow_empty: bool = False, run_ids: Collection[str] | None = None,
                  on_warning: Callable[[str], None] = print_warning) -> pd.DataFrame:
    """The results table of every run under `root` (only those of `run_ids`, if given).

    A root that does not exist is an error; one without runs too, unless `allow_empty`. A run whose records
    cannot be read (result.json or config.json empty, not JSON or not an object, result.json without a status,
    metrics.jsonl with a bad line before its last) is skipped; a torn last line of metrics.jsonl is dropped and
    the run kept. Each is passed to `on_warning` (default: a `warning:` line on stderr) and listed in the
    frame's attrs: `unreadable` (the skipped runs), `torn` (the dropped last lines) and `foreign` (the runs
    under the root left out because they are not in `run_ids`; empty without `run_ids`)."""
    root = Path(root)
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise AnalysisError(f"{root} {state}; give the folder that `scaling sweep run --root` or `scaling train "
                            "--workdir` wrote to")
    workdirs = run_dirs(root)
    if run_ids is not None:
        wanted = set(run_ids)
        workdirs = [workdir for workdir in workdirs if run_id(root, workdir) in wanted]
    if not workdirs and not allow_empty:
        raise AnalysisError(f"{root} holds no run workdir (no {RESULT_FILE} below it); give a sweep root or a table")
    rows, unreadable, torn = [], [], []

    def dropped(message: str) -> None:
        torn.append(message)
        on_warning(message)

    for workdir in workdirs:
        try:
            rows.extend(_run_rows(root, workdir, dropped))
        except AnalysisError as error:
            unreadable.append(f"skipped run {run_id(root, workdir)}: {error}")
            on_warning(unreadable[-1])
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame.attrs.update(unreadable=unreadable, torn=torn,
                       foreign=foreign_runs(root, run_ids) if run_ids is not None else [])
    return frame


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; anything else (empty, not JSON, not an object) is an AnalysisError naming the
    file."""
    try:
        text = Path(path).read_text(errors="replace")  # bytes that are not UTF-8 make it invalid JSON
        value = json.loads(text)
    except OSError as error:
        raise AnalysisError(f"{path} cannot be read ({error}); {FIX}") from error
    except json.JSONDecodeError as error:
        problem = "is empty" if not text.strip() else f"is not valid JSON ({error})"
        raise AnalysisError(f"{path} {problem}; {FIX}") from error
    if not isinstance(value, dict):
        raise AnalysisError(f"{path} holds a JSON {type(value).__name__}, not an object; {FIX}")
    return value


def read_metrics(workdir: Path, *, on_torn: Callable[[str], None] = print_warning) -> list[dict[str, Any]]:
    """The run's metrics.jsonl lines in order (none if it has no such file).

    A torn last line (text after the last newline, or a last line that is not a JSON object: a kill or a full
    disk mid-write) is dropped and said to `on_torn` (default: a `warning:` line on stderr); a bad line before
    it is an AnalysisError naming the file and the line."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        raise AnalysisError(f"{path} cannot be read ({error}); {FIX}") from error
    lines = text.split("\n")  # the last item is the text after the last newline ("" if the file ends with one)
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    metrics = []
    for number, line in numbered:
        value = _json_object(line)
        if number == numbered[-1][0] and (number == len(lines) or value is None):
            on_torn(f"dropped the torn last line {number} of {path} ({line[:40]!r}): the run was stopped mid-write; "
                    "its other lines are kept")
        elif value is None:
            raise AnalysisError(f"{path} line {number} is not a JSON object ({line[:40]!r}); {FIX}")
        else:
            metrics.append(value)
    return metrics


def _json_object(line: str) -> dict[str, Any] | None:
    """`line` as a JSON object, or None if it is not one."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _run_rows(root: Path, workdir: Path, on_torn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The rows of one run: one per eval line, or one from result.json's final_eval if it logged none."""
    result = read_json(workdir / RESULT_FILE)
    if not isinstance(result.get("status"), str):
        raise AnalysisError(f"{workdir / RESULT_FILE} has no status (the run did not finish writing it); {FIX}")
    config = read_json(workdir / CONFIG_FILE) if (workdir / CONFIG_FILE).exists() else {}
    optim, model = config.get("optim") or {}, config.get("model") or {}
    base = {
        "run_id": run_id(root, workdir), "sweep": (config.get("wandb") or {}).get("group") or root.name,
        **{key: result.get(key) for key in RESULT_KEYS},
        "width": result.get("width") or model.get("width"), "depth": result.get("depth") or model.get("depth"),
        "lr": optim.get("lr"), "weight_decay": optim.get("weight_decay"), "schedule": _schedule(config),
        "seed": config.get("seed"),
    }
    lines = read_metrics(workdir, on_torn=on_torn)
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
