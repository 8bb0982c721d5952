"""Where a report's numbers come from: the table, its sweeps, datasets and model families, the versions of
the packages that computed them, and when."""

from __future__ import annotations

import datetime
import importlib.metadata
from typing import Any

import pandas as pd

from analysis.table.load import Results

PACKAGES = ("imagenet-scaling", "numpy", "scipy", "jax", "pandas", "matplotlib")
DESCRIBED = ("sweep", "dataset", "family", "num_classes")  # columns whose distinct values are listed


def provenance(results: Results) -> dict[str, Any]:
    """The table's path and row selection, the distinct values of its sweep, dataset, family and class-count
    columns, the installed versions of the analysis' packages, and the date (UTC)."""
    return {
        "table": results.source, "where": list(results.where),
        **{column: _values(results.frame, column) for column in DESCRIBED},
        "runs": int(results.frame["run_id"].nunique()) if "run_id" in results.frame.columns else None,
        "packages": {name: _version(name) for name in PACKAGES},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def provenance_line(record: dict[str, Any]) -> str:
    """The provenance record as one sentence."""
    described = "; ".join(f"{column}: {', '.join(str(v) for v in record[column])}" for column in DESCRIBED
                          if record.get(column))
    where = f" where {' and '.join(record['where'])}" if record["where"] else ""
    runs = f", {record['runs']} runs" if record.get("runs") is not None else ""
    packages = ", ".join(f"{name} {version}" for name, version in record["packages"].items() if version)
    return f"Table {record['table']}{where}{runs}; {described or 'no sweep, dataset or family columns'}. " \
           f"Computed {record['date']} with {packages}."


def _values(frame: pd.DataFrame, column: str) -> list[Any]:
    if column not in frame.columns:
        return []
    return sorted(frame[column].dropna().unique().tolist(), key=str)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
