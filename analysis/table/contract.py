"""The contract between training and analysis: what a run leaves in its workdir (file names, status strings),
the results table's columns, and user column mappings. `scaling` imports these names; nothing else spells them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from analysis.errors import AnalysisError

CONFIG_FILE = "config.json"  # the run's resolved config
RESULT_FILE = "result.json"  # the run's summary and status (the source of truth)
METRICS_FILE = "metrics.jsonl"  # one JSON line per logged step: kind "train" or "eval"
RESULTS_STEM = "results"  # a sweep root's table: results.csv and results.parquet


class Status:
    """The `status` of result.json and of the table's rows."""

    RUNNING = "running"  # training, or killed before it could record anything else
    COMPLETED = "completed"
    FAILED = "failed"
    DIVERGED = "diverged"  # loss or gradient norm non-finite at the result's `step`
    PREEMPTED = "preempted"  # SIGTERM or a Slurm warning: checkpointed and stopped; rerunning resumes it
    INTERRUPTED = "interrupted"  # stopped from outside (KeyboardInterrupt, SystemExit); rerunning resumes it


FINAL_STATUSES = (Status.COMPLETED, Status.DIVERGED)  # rerunning cannot change these; failed runs are retried

RESULT_COLUMNS = (
    "run_id", "sweep", "family", "width", "depth", "params", "flops_per_example", "dataset", "num_classes",
    "train_examples", "eval_examples", "resolution", "batch_size", "step", "examples_seen", "compute", "lr",
    "weight_decay", "schedule", "seed", "is_final", "train_loss", "eval_loss", "top1_error", "top5_error",
    "minival_error", "status", "wall_seconds", "device_kind", "compute_dtype",
)

EVAL_EXAMPLES = "eval_examples"  # examples in the evaluation split (NaN where result.json does not say)
EVAL_SPLIT_METRICS = ("top1_error", "top5_error")  # errors counted on the evaluation split: multiples of 1/n


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """`["params=n_params", ...]` (contract name = the table's name) as a dict."""
    mapping = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise AnalysisError(f"bad column mapping {item!r}: write NAME=COLUMN, e.g. params=n_params")
        mapping[name.strip()] = column.strip()
    return mapping


def rename_columns(frame: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """The table with its columns renamed to the contract's names given by `mapping` (name -> table column)."""
    missing = [column for column in mapping.values() if column not in frame.columns]
    if missing:
        raise AnalysisError(
            f"column mapping names {missing} but the table has no such column; it has {list(frame.columns)}"
        )
    return frame.rename(columns={column: name for name, column in mapping.items()})


def require_columns(frame: pd.DataFrame, names: Iterable[str], purpose: str) -> None:
    """Raise if any of `names` is not a column, saying what needed it and how to map other names."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise AnalysisError(
            f"{purpose} needs column(s) {missing}, which the table lacks (it has {list(frame.columns)}); "
            "map your own names with --columns NAME=COLUMN"
        )
