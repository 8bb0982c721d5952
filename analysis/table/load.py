"""Load a results table: a sweep's CSV/Parquet, any CSV/Parquet with named columns, or a folder of run workdirs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import Status, rename_columns
from analysis.table.workdirs import read_workdirs


@dataclasses.dataclass(frozen=True)
class Results:
    """The rows that may be fitted (status completed, or every row of a table without a status column)."""

    frame: pd.DataFrame
    source: str
    dropped: int  # rows left out because their status is not "completed"


def load_results(source: str | Path, columns: Mapping[str, str] | None = None) -> Results:
    """Read `source` (.csv, .parquet or a folder of run workdirs), rename by `columns`, drop unfinished rows."""
    frame = rename_columns(_read_table(Path(source)), columns or {})
    dropped = 0
    if "status" in frame.columns:
        completed = frame["status"].astype(str) == Status.COMPLETED
        dropped = int((~completed).sum())
        frame = frame[completed].reset_index(drop=True)
    if frame.empty:
        raise AnalysisError(
            f"{source} has no rows to fit ({dropped} dropped because their status is not {Status.COMPLETED!r})"
        )
    return Results(frame=frame, source=str(source), dropped=dropped)


def _read_table(path: Path) -> pd.DataFrame:
    if path.is_dir():
        return read_workdirs(path)
    if not path.exists():
        raise AnalysisError(f"{path} does not exist; give a results table (.csv/.parquet) or a folder of workdirs")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise AnalysisError(f"cannot read {path}: give a .csv or .parquet table, or a folder of run workdirs")
