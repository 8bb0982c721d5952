"""Load a results table: a sweep's CSV/Parquet, any CSV/Parquet with named columns, or a folder of run workdirs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import Status, rename_columns
from analysis.table.rows import Condition, ZeroErrors, apply_where, split_by, zero_errors
from analysis.table.workdirs import read_workdirs

PARQUET_MAGIC = b"PAR1"  # the first (and last) four bytes of a Parquet file


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
    notes: tuple[str, ...] = ()  # what reading the table found: runs skipped, torn lines dropped, repeated rows

    @property
    def warnings(self) -> tuple[str, ...]:
        """What reading the table found and what the selection did that changes the fitted values (zero errors
        floored or dropped)."""
        message = self.zero_errors.message if self.zero_errors else None
        return (*self.notes, message) if message else self.notes

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
    """Read `source` (.csv, .parquet or a folder of run workdirs), rename by `columns`, drop unfinished rows;
    the runs of a folder that could not be read and rows repeated in every column are warnings."""
    notes: list[str] = []
    frame = rename_columns(_read_table(Path(source), notes.append), columns or {})
    dropped = 0
    if "status" in frame.columns:
        completed = frame["status"].astype(str) == Status.COMPLETED
        dropped = int((~completed).sum())
        frame = frame[completed].reset_index(drop=True)
    if frame.empty:
        raise AnalysisError(
            f"{source} has no rows to fit ({dropped} dropped because their status is not {Status.COMPLETED!r})"
        )
    repeated = _repeated_rows(frame)
    return Results(frame=frame, source=str(source), dropped=dropped, notes=(*notes, *repeated))


def _repeated_rows(frame: pd.DataFrame) -> tuple[str, ...]:
    """A warning if some rows repeat another in every column (each copy weights the fit once more), else none."""
    copies = frame.duplicated()
    if not copies.any():
        return ()
    repeated = frame[copies].drop_duplicates()
    runs = list(dict.fromkeys(repeated["run_id"].astype(str))) if "run_id" in frame.columns else []
    where = f", of runs {', '.join(runs[:3])}{', ...' if len(runs) > 3 else ''}" if runs else ""
    return (f"{int(copies.sum())} rows repeat another row in every column ({len(repeated)} distinct rows{where}); "
            "they are fitted as they are, each copy one more point that weights the fit toward its run: drop them "
            "(pandas: table.drop_duplicates()) or rebuild the table from the run folders (scaling sweep results "
            "--root ROOT)",)


def _read_table(path: Path, on_warning: Callable[[str], None]) -> pd.DataFrame:
    """The table at `path`: a folder of workdirs (its unreadable runs said to `on_warning`), a CSV or a Parquet
    file; one that is empty or that pandas cannot read is an error naming it."""
    if path.is_dir():
        return read_workdirs(path, on_warning=on_warning)
    if not path.exists():
        raise AnalysisError(f"{path} does not exist; give a results table (.csv/.parquet) or a folder of workdirs")
    suffix = path.suffix.lower()
    readers = {".csv": ("CSV", pd.read_csv), ".parquet": ("Parquet", pd.read_parquet),
               ".pq": ("Parquet", pd.read_parquet)}
    if suffix not in readers:
        raise AnalysisError(f"cannot read {path}: give a .csv or .parquet table, or a folder of run workdirs")
    kind, read = readers[suffix]
    try:
        with path.open("rb") as file:
            head = file.read(len(PARQUET_MAGIC))
    except OSError as error:
        raise AnalysisError(f"cannot read {path} ({error.strerror}); check the path and its permissions") from error
    if not head:
        raise AnalysisError(f"{path} is empty (0 bytes); write the table again, e.g. `scaling sweep results --root "
                            "ROOT` for a sweep")
    try:
        frame = read(path)
    except ImportError as error:  # pandas found no Parquet engine (pyarrow or fastparquet)
        reason = str(error).partition("\n")[0]
        raise AnalysisError(f"cannot read {path}: reading Parquet needs pyarrow, which cannot be imported here "
                            f"({reason}); pip install pyarrow, or give the table as CSV "
                            f"({path.with_suffix('.csv').name}, which `scaling sweep results` writes beside "
                            f"{path.name})") from None
    except (ValueError, OSError) as error:  # pandas' and pyarrow's parse errors are ValueErrors
        if kind == "CSV" and head == PARQUET_MAGIC:
            hint = "it is a Parquet file: name it .parquet"
        elif kind == "Parquet" and head != PARQUET_MAGIC:
            hint = "it is not a Parquet file: if it is CSV, name it .csv"
        else:
            hint = "is it damaged? write it again"
        reason = str(error).partition("\n")[0] or type(error).__name__
        raise AnalysisError(f"cannot read {path} as {kind} ({reason}); {hint}") from error
    if frame.empty:
        raise AnalysisError(f"{path} has no rows (a header of {len(frame.columns)} columns only); write the table "
                            "again, e.g. `scaling sweep results --root ROOT` for a sweep")
    return frame
