"""Predict, then verify: fit a law on the rows below a cut-off in one column (compute, or model size to hold out
the largest models), predict each held-out point with the bootstrap prediction interval of analysis.predict,
and count how often the observed y falls inside: the intervals' coverage, to compare with their nominal level."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.bootstrap import DEFAULT_CONFIDENCE
from analysis.errors import AnalysisError
from analysis.predict import predict_at, prediction_warnings
from analysis.request import FitRequest, fit_request
from analysis.table.contract import require_columns
from analysis.validate import positive_column


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """One held-out point: its run, inputs, value of the cut-off column, observed y, predicted y and prediction
    interval."""

    run: str
    at: dict[str, float]
    position: float  # its value in the cut-off column
    observed: float
    predicted: float
    low: float
    high: float
    inside: bool


@dataclasses.dataclass(frozen=True)
class Verification:
    """A law fitted where `column` < `cutoff`, checked on the points at or above it."""

    law: str
    y: str
    column: str
    cutoff: float
    confidence: float
    train_points: int
    rows: tuple[HeldOut, ...]
    warnings: tuple[str, ...]

    @property
    def coverage(self) -> float:
        """Share of held-out points inside their prediction interval (NaN when none has an interval)."""
        scored = [row.inside for row in self.rows if math.isfinite(row.low)]
        return float(np.mean(scored)) if scored else math.nan

    def record(self) -> dict[str, Any]:
        """The verification as a dict (for JSON), coverage included."""
        return {**dataclasses.asdict(self), "coverage": self.coverage}


def parse_below(text: str) -> tuple[str, float]:
    """`--verify-below COLUMN=VALUE` as (column, value)."""
    column, sep, number = (part.strip() for part in text.partition("="))
    try:
        value = float(number) if sep and column else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise AnalysisError(f"bad --verify-below {text!r}: write COLUMN=VALUE with a positive number, e.g. "
                            "compute=1e16 (fit below that compute) or params=5e6 (hold out the models this size "
                            "and larger)")
    return column, value


def check_below(frame: pd.DataFrame, column: str, cutoff: float) -> np.ndarray:
    """The values of `column`, checked to have rows on both sides of `cutoff`."""
    require_columns(frame, [column], f"--verify-below {column}=...")
    values = positive_column(frame, column)
    if not (values < cutoff).any() or not (values >= cutoff).any():
        side = "below" if not (values < cutoff).any() else "at or above"
        raise AnalysisError(f"--verify-below {column}={cutoff:g} leaves no row {side} it: {column} runs from "
                            f"{values.min():.4g} to {values.max():.4g} in the table; choose a value between them")
    return values


def verify(request: FitRequest, frame: pd.DataFrame, *, column: str, cutoff: float, resamples: int,
           by_run: bool = False, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> Verification:
    """Fit `request` on the rows of `frame` whose `column` lies below `cutoff` (as if the others did not exist:
    an envelope is taken over those rows only), predict the request's points at or above it, and score the
    prediction intervals on them."""
    values = check_below(frame, column, cutoff)
    held = request.rows(frame)
    held = held[held[column] >= cutoff]
    if held.empty:
        raise AnalysisError(f"--verify-below {column}={cutoff:g} leaves {request.law.name} no point to predict (its "
                            f"{request.points} points all lie below); choose a smaller value")
    fitted = fit_request(request, frame[values < cutoff], resamples=resamples, by_run=by_run, seed=seed,
                         confidence=confidence)
    predictions = predict_at(fitted, held[list(request.x)].to_numpy(dtype=np.float64).tolist())
    runs = held["run_id"].astype(str).tolist() if "run_id" in held.columns else [str(i) for i in held.index]
    observed = held[request.y].to_numpy(dtype=np.float64)
    positions = held[column].to_numpy(dtype=np.float64)
    rows = tuple(HeldOut(run=run, at=item.at, position=float(position), observed=float(y), predicted=item.value,
                         low=item.run_low, high=item.run_high, inside=bool(item.run_low <= y <= item.run_high))
                 for run, position, y, item in zip(runs, positions, observed, predictions))
    return Verification(law=request.law.name, y=request.y, column=column, cutoff=float(cutoff),
                        confidence=confidence, train_points=fitted.fit.num_points, rows=rows,
                        warnings=tuple(prediction_warnings(fitted, predictions)))


def format_verification(result: Verification) -> str:
    """The held-out points as a table (observed, predicted, interval, inside), then the coverage."""
    lines = [f"{result.law}: fitted to {result.train_points} points with {result.column} < {result.cutoff:.4g}, "
             f"predicting {len(result.rows)} held-out points of {result.y}",
             f"  {'run':<28}{result.column:>12}{'observed':>12}{'predicted':>12}   "
             f"{f'{result.confidence:.0%} interval of one run':<30}inside"]
    for row in result.rows:
        interval = f"[{row.low:.4g}, {row.high:.4g}]" if math.isfinite(row.low) else "-"
        lines.append(f"  {row.run[:27]:<28}{row.position:>12.4g}{row.observed:>12.4g}"
                     f"{row.predicted:>12.4g}   {interval:<30}{'yes' if row.inside else 'no'}")
    inside = sum(row.inside for row in result.rows)
    level = f"{result.confidence:.0%}"
    lines.append(f"  coverage: {inside} of {len(result.rows)} held-out points inside their {level} prediction "
                 f"interval ({result.coverage:.0%}; nominal {level})")
    lines.extend(f"  warning: {warning}" for warning in result.warnings)
    return "\n".join(lines)
