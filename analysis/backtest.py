"""Backtest: fit each law on the points below a compute cut-off, predict the points above it, and rank the
laws by the RMSE of log y on those points (the extrapolation loss of Alabdulmohsin et al. 2022).

Every law listed is scored or says why not. By default all laws share one cut-off (the top quarter of the
table's log-compute range held out); a law left without points on either side of it (the envelope of a sweep
may end below it) is scored above its own cut-off, the top quarter of its own points' range, and a warning
says so. A cut-off given by the user applies to every law."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.numbers import number
from analysis.request import FitRequest
from analysis.validate import positive_column

DEFAULT_HOLDOUT = 0.25  # share of the table's log-compute range held out by default


@dataclasses.dataclass(frozen=True)
class BacktestRow:
    """One law's extrapolation: points used on each side of the cut-off and the error beyond it."""

    law: str
    points: str
    cutoff: float  # this law's cut-off: the common one, or its own where the common one left it unscored
    train_points: int
    test_points: int
    rmse_log: float  # NaN when the law could not be scored
    rank: int | None
    note: str | None


@dataclasses.dataclass(frozen=True)
class Backtest:
    """The common cut-off, the compute column it applies to, and one row per law, best first."""

    cutoff: float
    column: str
    rows: tuple[BacktestRow, ...]
    warnings: tuple[str, ...]


def default_cutoff(compute: np.ndarray, holdout: float = DEFAULT_HOLDOUT) -> float:
    """The compute below which lies the first (1 - holdout) of the log-compute range."""
    low, high = np.log(np.min(compute)), np.log(np.max(compute))
    return float(np.exp(low + (1.0 - holdout) * (high - low)))


def backtest(requests: Sequence[FitRequest], frame: pd.DataFrame, *, cutoff: float | None = None) -> Backtest:
    """Fit every request below `cutoff` and score it above. Without `cutoff`: below `default_cutoff` of the
    table, or of the law's own points for a law that could not be scored at the table's."""
    column = _compute_column(requests, frame)
    chosen = cutoff is not None
    common = _checked_cutoff(frame, column, cutoff) if chosen else default_cutoff(positive_column(frame, column))
    rows = [_score(request, frame, column, common) for request in requests]
    if not chosen:
        rows = [_own_cutoff(request, frame, column, row) for request, row in zip(requests, rows)]
    order = sorted((row for row in rows if np.isfinite(row.rmse_log)), key=lambda row: row.rmse_log)
    ranks = {id(row): rank for rank, row in enumerate(order, start=1)}
    rows = [dataclasses.replace(row, rank=ranks.get(id(row))) for row in rows]
    rows.sort(key=lambda row: (row.rank is None, row.rank or 0))
    return Backtest(cutoff=common, column=column, rows=tuple(rows), warnings=_warnings(requests, rows, common))


def _own_cutoff(request: FitRequest, frame: pd.DataFrame, column: str, row: BacktestRow) -> BacktestRow:
    """`row` if it was scored; else the law scored above the top quarter of its own points' range, if that is
    another cut-off and scores it."""
    if np.isfinite(row.rmse_log):
        return row
    values = request.rows(frame)[column].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    if np.unique(values).size < 2:
        return row
    own = _score(request, frame, column, default_cutoff(values))
    if not np.isfinite(own.rmse_log) or np.isclose(own.cutoff, row.cutoff):
        return row
    reason = f"at the common cut-off {number(row.cutoff)}: {row.note}"
    return dataclasses.replace(own, note=f"{reason}; {own.note}" if own.note else reason)


def _warnings(requests: Sequence[FitRequest], rows: Sequence[BacktestRow], common: float) -> tuple[str, ...]:
    """Point sets that differ, laws scored above their own cut-off, laws not scored."""
    warnings = []
    sets = sorted({request.points for request in requests})
    if len(sets) > 1:
        warnings.append(f"backtest: the laws were scored on different point sets ({', '.join(sets)}); compare "
                        "ranks within a point set")
    for row in rows:
        if not np.isfinite(row.rmse_log):
            warnings.append(f"backtest: {row.law} could not be scored ({row.note}); it has no rank")
        elif row.cutoff != common:
            warnings.append(f"backtest: {row.law} scored above its own cut-off {number(row.cutoff)} ({row.note}); "
                            "its RMSE is not directly comparable to the others'")
    return tuple(warnings)


def _checked_cutoff(frame: pd.DataFrame, column: str, cutoff: float) -> float:
    """`cutoff`, refused where it lies below every row of the table (no law would have a point to fit)."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and cutoff < values.min():
        raise AnalysisError(
            f"--cutoff {cutoff:.3g} lies below every {column} in the table (smallest {values.min():.3g}, largest "
            f"{values.max():.3g}), so no law has a point to fit; choose a cut-off between them, e.g. "
            f"{default_cutoff(values):.3g} (the default: the top quarter of the log-{column} range held out)")
    return float(cutoff)


def _compute_column(requests: Sequence[FitRequest], frame: pd.DataFrame) -> str:
    """`compute` if the table has it, else the shared single x of the laws."""
    if "compute" in frame.columns:
        return "compute"
    xs = {request.x for request in requests}
    if len(xs) == 1 and len(next(iter(xs))) == 1:
        return next(iter(xs))[0]
    raise AnalysisError("the backtest cuts at a compute value but the table has no compute column; map one with "
                        "--columns compute=COLUMN")


def _score(request: FitRequest, frame: pd.DataFrame, column: str, cutoff: float) -> BacktestRow:
    points = request.rows(frame)
    below = points[points[column] <= cutoff]
    above = points[points[column] > cutoff]
    row = BacktestRow(request.law.name, request.points, cutoff, len(below), len(above), float("nan"), None, None)
    if above.empty:
        return dataclasses.replace(row, note="no points above the cut-off")
    if below.empty:
        return dataclasses.replace(row, note="no points below the cut-off")
    try:
        fit = request.fit(below)
    except AnalysisError as error:
        return dataclasses.replace(row, note=str(error))
    predicted = fit.predict(*(above[x].to_numpy(dtype=np.float64) for x in request.x))
    residual = np.log(predicted) - np.log(above[request.y].to_numpy(dtype=np.float64))
    note = "; ".join(fit.warnings) or None
    return dataclasses.replace(row, rmse_log=float(np.sqrt(np.mean(residual**2))), note=note)
