"""Checks on the numbers that go into a fit: finite, positive (everything is fitted in log space), enough of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError


def positive_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """`frame[column]` as float64; NaN, infinite or non-positive values are an error naming their runs."""
    try:
        values = pd.to_numeric(frame[column]).to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise AnalysisError(f"column {column!r} is not numeric ({error}); pick a numeric column") from error
    labels = frame["run_id"].to_numpy() if "run_id" in frame.columns else None
    return positive_values(values, f"column {column!r}", labels)


def positive_values(values: np.ndarray, name: str, labels: Sequence | None = None) -> np.ndarray:
    """`values` as float64; NaN, infinite or non-positive values are an error naming a few of them."""
    values = np.asarray(values, dtype=np.float64)
    _refuse(name, ~np.isfinite(values), labels, "NaN or infinite", "drop or fix those rows")
    _refuse(name, values <= 0, labels, "zero or negative",
            "scaling laws are fitted in log space, so x and y must be positive; drop those rows")
    return values


def check_fractions(frame: pd.DataFrame, column: str) -> None:
    """Refuse an error column (a name with `error` in it: top1_error, top5_error, minival_error) with finite values
    above 1, naming how many and one of those rows (non-finite and negative values are `positive_column`'s)."""
    if "error" not in column or column not in frame.columns:
        return
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    outside = np.isfinite(values) & (values > 1)
    if not outside.any():
        return
    first = int(np.flatnonzero(outside)[0])
    keys = [key for key in ("run_id", "step") if key in frame.columns] + [column]
    example = ", ".join(f"{key}={frame[key].iloc[first]}" for key in keys)
    finite = values[np.isfinite(values)]
    in_percent = finite.min() >= 0 and finite.max() <= 100 and np.median(finite) > 1
    percent = " (they look like percentages: divide the column by 100)" if in_percent else ""
    raise AnalysisError(
        f"column {column!r} holds error rates, fractions in [0, 1], but {int(outside.sum())} of its rows exceed 1 "
        f"(e.g. {example}){percent}; fix the table, or leave those rows out with --where '{column}<=1'")


def enough_points(num_points: int, num_params: int, what: str) -> None:
    """Refuse a fit with no more points than parameters."""
    if num_points <= num_params:
        raise AnalysisError(
            f"{what} has {num_params} parameters but only {num_points} points; it needs at least "
            f"{num_params + 1}: add runs or evaluation points, or pick a law with fewer parameters"
        )


def _refuse(name: str, bad: np.ndarray, labels: Sequence | None, what: str, fix: str) -> None:
    if bad.any():
        where = np.asarray(labels)[bad] if labels is not None else np.flatnonzero(bad)
        examples = ", ".join(str(item) for item in list(dict.fromkeys(where.tolist()))[:3])
        place = "runs" if labels is not None else "rows"
        raise AnalysisError(f"{name} has {int(bad.sum())} {what} values (in {place} {examples}); {fix}")
