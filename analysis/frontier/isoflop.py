"""Hoffmann et al. 2022 approach 2: a parabola in log model size through each IsoFLOP curve; its minimum."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.bootstrap import DEFAULT_CONFIDENCE
from analysis.errors import AnalysisError
from analysis.frontier.allocation import Allocation, allocation, log_slopes
from analysis.frontier.flops import FlopsModel
from analysis.points import final_rows
from analysis.table.contract import require_columns
from analysis.validate import positive_column

METHOD = "IsoFLOP parabolas (Hoffmann approach 2)"
DEFAULT_TOLERANCE = 0.1


@dataclasses.dataclass(frozen=True)
class Parabola:
    """log y = a·z² + b·z + c with z = log N - center, fitted to the final y of runs at one budget."""

    budget: float
    params: np.ndarray
    values: np.ndarray
    coefficients: np.ndarray  # a, b, c (NaN if fewer than 3 sizes)
    center: float
    n_opt: float  # NaN when there is no bracketed minimum
    y_opt: float
    problem: str | None  # why this budget gives no optimum

    def curve(self, params: np.ndarray) -> np.ndarray:
        """The parabola's y at model sizes `params`."""
        return np.exp(np.polyval(self.coefficients, np.log(params) - self.center))


@dataclasses.dataclass(frozen=True)
class IsoFlop:
    """One parabola per compute budget and the allocation fitted to their minima."""

    parabolas: tuple[Parabola, ...]
    allocation: Allocation


def isoflop_frontier(frame: pd.DataFrame, y: str, flops: FlopsModel, *, budgets: Sequence[float] | None = None,
                     tolerance: float = DEFAULT_TOLERANCE, resamples: int = 200, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE) -> IsoFlop:
    """Group the runs' final rows into compute budgets (the given ones, or clusters of final compute within
    `tolerance`), fit a parabola of log y in log N per budget and fit N_opt(C) and D_opt(C) through the
    minima. Intervals come from resampling runs within each budget."""
    require_columns(frame, ["params", "compute", y], f"the {METHOD}")
    final = final_rows(frame)
    params, compute, values = (positive_column(final, column) for column in ("params", "compute", y))
    if np.unique(params).size < 3:
        raise AnalysisError(f"the {METHOD} needs runs of at least 3 model sizes; the table has "
                            f"{np.unique(params).size}: add runs of other sizes")
    groups = _budget_groups(compute, budgets, tolerance)
    parabolas = tuple(_parabola(float(np.exp(np.mean(np.log(compute[rows])))), params[rows], values[rows])
                      for rows in groups)
    good = [p for p in parabolas if p.problem is None]
    warnings = tuple(f"IsoFLOP budget {p.budget:.3g} FLOPs left out: {p.problem}" for p in parabolas if p.problem)
    if len(good) < 2:
        shown = "; ".join(warnings[:3]) + (f"; and {len(warnings) - 3} more" if len(warnings) > 3 else "")
        raise AnalysisError(
            f"the {METHOD} needs at least 2 compute budgets with a bracketed minimum; found {len(good)} of "
            f"{len(parabolas)} ({shown or 'no budget'}): run each budget over a range of model sizes around its "
            "optimum, or pass the budgets"
        )
    budget = np.array([p.budget for p in good])
    n_opt = np.array([p.n_opt for p in good])
    rng = np.random.default_rng(seed)
    resampled = np.full((resamples, len(good)), np.nan)
    for column, p in enumerate(good):
        for row in range(resamples):
            pick = rng.integers(0, len(p.params), len(p.params))
            resampled[row, column] = _parabola(p.budget, p.params[pick], p.values[pick]).n_opt
    log_c = np.log(budget)[None, :]
    finite = np.isfinite(resampled)
    usable = finite.sum(axis=1) >= 2
    n_slopes = np.where(usable, log_slopes(log_c, np.log(np.where(finite, resampled, 1.0)), finite)[0], np.nan)
    d_resampled = np.log(np.where(finite, flops.examples(budget[None, :], np.where(finite, resampled, 1.0)), 1.0))
    d_slopes = np.where(usable, log_slopes(log_c, d_resampled, finite)[0], np.nan)
    return IsoFlop(parabolas=parabolas, allocation=allocation(
        METHOD, budget, n_opt, flops.examples(budget, n_opt), (n_slopes, d_slopes), confidence, warnings))


def _budget_groups(compute: np.ndarray, budgets: Sequence[float] | None, tolerance: float) -> list[np.ndarray]:
    """Row indices of the final rows at each budget."""
    width = np.log1p(tolerance)
    log_c = np.log(compute)
    if budgets is not None:
        log_b = np.log(np.asarray(budgets, dtype=np.float64))
        nearest = np.argmin(np.abs(log_c[:, None] - log_b[None, :]), axis=1)
        close = np.abs(log_c - log_b[nearest]) <= width
        return [np.flatnonzero(close & (nearest == index)) for index in range(len(log_b))
                if np.any(close & (nearest == index))]
    order = np.argsort(log_c)
    breaks = np.flatnonzero(np.diff(log_c[order]) > width) + 1
    return list(np.split(order, breaks))


def _parabola(budget: float, params: np.ndarray, values: np.ndarray) -> Parabola:
    """Fit one IsoFLOP curve; say why if it has no usable minimum."""
    sizes = np.unique(params)
    center = float(np.mean(np.log(params)))
    if sizes.size < 3:
        return Parabola(budget, params, values, np.full(3, np.nan), center, np.nan, np.nan,
                        f"only {sizes.size} model size(s); a parabola needs 3")
    a, b, c = np.polyfit(np.log(params) - center, np.log(values), 2)
    coefficients = np.array([a, b, c])
    if a <= 0:
        return Parabola(budget, params, values, coefficients, center, np.nan, np.nan,
                        "the curve has no minimum (log y is not convex in log N)")
    z = -b / (2 * a)
    n_opt, y_opt = float(np.exp(center + z)), float(np.exp(c - b * b / (4 * a)))
    if not sizes[0] <= n_opt <= sizes[-1]:
        return Parabola(budget, params, values, coefficients, center, np.nan, np.nan,
                        f"its minimum ({n_opt:.3g} params) lies outside the sizes trained "
                        f"({sizes[0]:.3g} to {sizes[-1]:.3g}); train smaller or larger models at this budget")
    return Parabola(budget, params, values, coefficients, center, n_opt, y_opt, None)
