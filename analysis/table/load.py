"""Load a results table: a sweep's CSV/Parquet, any CSV/Parquet with named columns, or a folder of run workdirs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import Status, rename_columns
from analysis.table.rows import Condition, ZeroErrors, apply_where, split_by, zero_errors
from analysis.table.workdirs import read_workdirs


@dataclasses.dataclass(frozen=True)
class Results:
    """The rows that may be fitted (status completed, or every row of a table without a status column), after
    any row selection (`--where`, a `--by` group) and the handling of zero errors (see analysis.table.rows)."""

    frame: pd.DataFrame
    source: str
    dropped: int  # rows left out because their status is not "completed"
    where: tuple[str, ...] = ()  # the conditions that selected the rows (--where items, a --by group)
    unselected: int = 0  # completed rows left out by those conditions
    zero_errors: ZeroErrors | None = None  # what was done with rows whose y is exactly 0

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the selection did that changes the fitted values (zero errors floored or dropped)."""
        message = self.zero_errors.message if self.zero_errors else None
        return (message,) if message else ()

    def describe(self) -> str:
        """One line: the table, its usable rows and what was left out."""
        selected = (f" where {' and '.join(self.where)} ({self.unselected} other rows left out)"
                    if self.where else "")
        zero = self.zero_errors.dropped if self.zero_errors else 0
        zeros = f", {zero} dropped (y exactly 0)" if zero else ""
        return (f"{self.source}: {len(self.frame)} usable rows{selected}, {self.dropped} dropped (status not "
                f"completed){zeros}")

    def select(self, conditions: Sequence[Condition]) -> Results:
        """Only the rows satisfying every condition (none left is an error)."""
        if not conditions:
            return self
        frame = apply_where(self.frame, conditions)
        return dataclasses.replace(self, frame=frame, where=(*self.where, *(c.text for c in conditions)),
                                   unselected=self.unselected + len(self.frame) - len(frame))

    def split(self, column: str) -> tuple[list[tuple[object, Results]], int]:
        """One Results per value of `column` (sorted), and how many rows have no value there (in none)."""
        groups, missing = split_by(self.frame, column)
        return [(value, dataclasses.replace(
            self, frame=frame, where=(*self.where, f"{column}={value}"),
            unselected=self.unselected + len(self.frame) - len(frame))) for value, frame in groups], missing

    def with_zero_errors(self, y: str, policy: str = "auto", eval_examples: int | None = None) -> Results:
        """Rows whose `y` is exactly 0 floored or dropped (analysis.table.rows.zero_errors); none left: an error."""
        frame, handled = zero_errors(self.frame, y, policy, eval_examples)
        if frame.empty:
            raise AnalysisError(f"{self.source} has no rows to fit: {handled.message}")
        return dataclasses.replace(self, frame=frame, zero_errors=handled)


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
