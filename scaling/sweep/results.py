"""The results table of a sweep root, written as CSV and Parquet. The rows and their columns are the contract
with `analysis`, built by its one reader of run workdirs (analysis.table.workdirs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.table.contract import RESULTS_STEM
from analysis.table.workdirs import read_workdirs


def write_results(root: Path, out: Path | None = None) -> tuple[Path, Path, pd.DataFrame]:
    """Write `results.csv` and `results.parquet` (to `out` or the root; an empty table if it holds no run);
    return their paths and the table."""
    table = read_workdirs(root, allow_empty=True)
    stem = out.with_suffix("") if out else Path(root) / RESULTS_STEM
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False)
    table.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path, table
