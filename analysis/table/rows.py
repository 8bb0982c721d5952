"""Which rows of a results table are analysed: `--where` conditions, `--by` groups (one report per class count,
say), and errors of exactly 0, which lie below the evaluation set's resolution and cannot be fitted in log space:
floored at half of one example (0.5/n for an evaluation set of n examples) or dropped, and always said so."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import EVAL_EXAMPLES, EVAL_SPLIT_METRICS

OPERATORS = ("<=", ">=", "!=", "==", "=", "<", ">")
ZERO_POLICIES = ("auto", "floor", "drop")
_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")


@dataclasses.dataclass(frozen=True)
class Condition:
    """One `--where` item: COLUMN=V1,V2 (any of), COLUMN!=V1,V2 (none of), or COLUMN<=V (also <, >=, >)."""

    column: str
    op: str
    values: tuple[str, ...]
    text: str

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of `frame` satisfy the condition."""
        if self.column not in frame.columns:
            raise AnalysisError(f"--where {self.text!r}: the table has no column {self.column!r} "
                                f"(it has {list(frame.columns)})")
        column = frame[self.column]
        if self.op in ("=", "!="):
            hit = np.zeros(len(frame), dtype=bool)
            for value in self.values:
                hit |= _equal(column, value, self.text)
            return hit if self.op == "=" else ~hit
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        if pd.api.types.is_bool_dtype(column) or np.isnan(numbers).all():
            raise AnalysisError(f"--where {self.text!r}: {self.op} compares numbers, but column {self.column!r} "
                                "is not numeric; use = or != with its values")
        bound = _number(self.values[0], self.text)
        with np.errstate(invalid="ignore"):
            return {"<": numbers < bound, "<=": numbers <= bound, ">": numbers > bound,
                    ">=": numbers >= bound}[self.op]


def parse_where(items: Sequence[str]) -> list[Condition]:
    """`--where` items as conditions; a malformed one is an error saying how to write it."""
    conditions = []
    for item in items:
        match = _CONDITION.match(item)
        if not match or not match.group(3):
            raise AnalysisError(f"bad --where {item!r}: write COLUMN=VALUE (or COLUMN=V1,V2, COLUMN!=VALUE, "
                                "COLUMN<=NUMBER, <, >=, >), e.g. --where num_classes=10")
        column, op, text = match.groups()
        op = "=" if op == "==" else op
        listed = op in ("=", "!=")
        values = tuple(value.strip() for value in text.split(",")) if listed else (text,)
        if not listed and "," in text:
            raise AnalysisError(f"bad --where {item!r}: {op} takes one number")
        if not all(values):
            raise AnalysisError(f"bad --where {item!r}: an empty value in the list")
        conditions.append(Condition(column=column, op=op, values=values, text=item.strip()))
    return conditions


def apply_where(frame: pd.DataFrame, conditions: Sequence[Condition]) -> pd.DataFrame:
    """The rows satisfying every condition; none left is an error naming the values the column holds."""
    keep = np.ones(len(frame), dtype=bool)
    for condition in conditions:
        hit = condition.mask(frame)
        if not (keep & hit).any():
            values = _values(frame[condition.column][keep])
            raise AnalysisError(f"--where {condition.text!r} leaves no rows to fit (of {int(keep.sum())}); "
                                f"column {condition.column!r} holds {values}")
        keep &= hit
    return frame[keep].reset_index(drop=True)


def split_by(frame: pd.DataFrame, column: str) -> tuple[list[tuple[object, pd.DataFrame]], int]:
    """The table's rows grouped by the value of `column` (sorted), and how many rows have no value there."""
    if column not in frame.columns:
        raise AnalysisError(f"--by {column!r}: the table has no such column (it has {list(frame.columns)})")
    present = frame[column].notna()
    values = sorted(frame.loc[present, column].unique().tolist(), key=lambda v: (isinstance(v, str), v))
    groups = [(_plain(value), frame[present & (frame[column] == value)].reset_index(drop=True)) for value in values]
    return groups, int((~present).sum())


def mixed_classes(frame: pd.DataFrame) -> list[int | float]:
    """The table's distinct class counts when it has more than one (else an empty list)."""
    if "num_classes" not in frame.columns:
        return []
    classes = sorted(pd.to_numeric(frame["num_classes"], errors="coerce").dropna().unique().tolist())
    return [_plain(value) for value in classes] if len(classes) > 1 else []


def group_folder(column: str, value: object) -> str:
    """The subfolder of a group's report: classes-K for num_classes, else COLUMN-VALUE (safe characters)."""
    name = f"classes-{value}" if column == "num_classes" else f"{column}-{value}"
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name)


@dataclasses.dataclass(frozen=True)
class ZeroErrors:
    """What was done with the rows whose y is exactly 0."""

    column: str
    policy: str  # the option asked for: auto, floor or drop
    floored: int  # rows raised to half of one example of their evaluation set
    dropped: int  # rows left out
    floors: tuple[float, ...]  # the distinct values the floored rows were given
    runs: tuple[str, ...]  # the runs holding those rows (first few)

    @property
    def message(self) -> str | None:
        """One line saying what was done and why (None when no row had y = 0)."""
        if not self.floored and not self.dropped:
            return None
        where = f" (in runs {', '.join(self.runs)})" if self.runs else ""
        both = self.floored and self.dropped
        parts = []
        if self.floored:
            floors = ", ".join(f"{value:.4g}" for value in self.floors)
            parts.append(f"{f'{self.floored} ' if both else ''}floored at half of one evaluation example, "
                         f"0.5/n = {floors}")
        if self.dropped:
            why = ("--zero-errors drop" if self.policy == "drop" else
                   "the evaluation set's size is unknown: pass --eval-examples N or give the table an "
                   f"{EVAL_EXAMPLES} column to floor them at 0.5/N instead")
            parts.append(f"{f'{self.dropped} ' if both else ''}dropped ({why})")
        return (f"{_rows(self.floored + self.dropped)} of {self.column} exactly 0{where}, below the evaluation "
                f"set's resolution and not fittable in log space: {'; '.join(parts)}")

    def record(self) -> dict[str, object]:
        """As plain data for report.json and fit.json."""
        return {"column": self.column, "policy": self.policy, "floored": self.floored, "dropped": self.dropped,
                "floors": list(self.floors), "runs": list(self.runs), "message": self.message}


def zero_errors(frame: pd.DataFrame, y: str, policy: str = "auto",
                eval_examples: int | None = None) -> tuple[pd.DataFrame, ZeroErrors]:
    """Floor or drop the rows whose `y` is exactly 0. The floor is 0.5/n, n the evaluation set's size: from
    `eval_examples` if given, else the table's eval_examples column (for the evaluation split's metrics).
    `auto` floors where n is known and drops the rest; `floor` refuses rows whose n is unknown; `drop` drops."""
    if policy not in ZERO_POLICIES:
        raise AnalysisError(f"--zero-errors {policy!r}: choose one of {', '.join(ZERO_POLICIES)}")
    if eval_examples is not None and eval_examples < 1:
        raise AnalysisError(f"--eval-examples must be at least 1, got {eval_examples}")
    nothing = ZeroErrors(column=y, policy=policy, floored=0, dropped=0, floors=(), runs=())
    if y not in frame.columns:
        return frame, nothing
    zero = (pd.to_numeric(frame[y], errors="coerce") == 0).to_numpy()
    if not zero.any():
        return frame, nothing
    if eval_examples is not None:
        size = np.full(len(frame), float(eval_examples))
    elif y in EVAL_SPLIT_METRICS and EVAL_EXAMPLES in frame.columns:
        size = pd.to_numeric(frame[EVAL_EXAMPLES], errors="coerce").to_numpy(dtype=np.float64)
    else:
        size = np.full(len(frame), np.nan)
    known = np.isfinite(size) & (size >= 1)
    runs = tuple(dict.fromkeys(str(run) for run in frame.loc[zero, "run_id"]))[:3] if "run_id" in frame else ()
    if policy == "floor" and (zero & ~known).any():
        raise AnalysisError(
            f"{_rows(int((zero & ~known).sum()))} of {y} exactly 0 (in runs {', '.join(runs)}) cannot be floored: "
            f"the evaluation set's size is unknown; pass --eval-examples N (the floor is 0.5/N), give the table an "
            f"{EVAL_EXAMPLES} column, or use --zero-errors drop")
    floor = zero & known & (policy != "drop")
    drop = zero & ~floor
    frame = frame.copy()
    if floor.any():
        frame[y] = pd.to_numeric(frame[y], errors="coerce").astype(np.float64)
        frame.loc[floor, y] = 0.5 / size[floor]
    floors = tuple(sorted({float(value) for value in 0.5 / size[floor]}))
    result = ZeroErrors(column=y, policy=policy, floored=int(floor.sum()), dropped=int(drop.sum()), floors=floors,
                        runs=runs)
    return frame[~drop].reset_index(drop=True), result


def _equal(column: pd.Series, value: str, text: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        truth = {"true": True, "1": True, "false": False, "0": False}.get(value.lower())
        if truth is None:
            raise AnalysisError(f"--where {text!r}: column {column.name!r} is true/false; give true or false")
        return (column == truth).to_numpy()
    if pd.api.types.is_numeric_dtype(column):
        number = _number(value, text)
        return np.isclose(column.to_numpy(dtype=np.float64), number, rtol=1e-9, atol=0.0)
    return (column.astype(str) == value).to_numpy()


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise AnalysisError(f"--where {where!r}: {text!r} is not a number") from None


def _values(column: pd.Series) -> str:
    values = sorted({_plain(value) for value in column.dropna().unique().tolist()}, key=str)
    shown = ", ".join(str(value) for value in values[:10])
    return f"{shown}{', ...' if len(values) > 10 else ''}" if values else "no values"


def _plain(value: object) -> object:
    """Whole floats as ints (class counts read from a CSV with gaps are floats)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"
