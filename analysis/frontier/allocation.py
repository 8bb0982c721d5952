"""The optimal model size N and data size D as power laws of compute, with intervals on the exponents."""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis.bootstrap import Estimate, percentile_interval
from analysis.errors import AnalysisError


@dataclasses.dataclass(frozen=True)
class Allocation:
    """N_opt = n_coefficient·C^n_exponent and D_opt = d_coefficient·C^d_exponent, fitted to optima found at
    the given compute values."""

    method: str
    compute: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    n_exponent: Estimate
    d_exponent: Estimate
    n_coefficient: float
    d_coefficient: float
    warnings: tuple[str, ...] = ()

    def n_at(self, compute: np.ndarray) -> np.ndarray:
        """The fitted optimal model size at `compute`."""
        return self.n_coefficient * np.asarray(compute, dtype=np.float64) ** self.n_exponent.value

    def d_at(self, compute: np.ndarray) -> np.ndarray:
        """The fitted optimal data size at `compute`."""
        return self.d_coefficient * np.asarray(compute, dtype=np.float64) ** self.d_exponent.value


def log_slopes(log_x: np.ndarray, log_y: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of log_y on log_x along the last axis, over entries where mask holds."""
    mask = np.ones(np.broadcast(log_x, log_y).shape, bool) if mask is None else mask
    count = mask.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.where(mask, log_x, 0).sum(axis=-1) / count
        mean_y = np.where(mask, log_y, 0).sum(axis=-1) / count
        dx = np.where(mask, log_x - mean_x[..., None], 0)
        dy = np.where(mask, log_y - mean_y[..., None], 0)
        slope = (dx * dy).sum(axis=-1) / (dx * dx).sum(axis=-1)
    return slope, mean_y - slope * mean_x


def allocation(method: str, compute: np.ndarray, n_opt: np.ndarray, d_opt: np.ndarray,
               resampled_slopes: tuple[np.ndarray, np.ndarray], confidence: float,
               warnings: tuple[str, ...] = ()) -> Allocation:
    """Fit N_opt(C) and D_opt(C) as power laws; the intervals come from the slopes of resampled optima."""
    if len(compute) < 2 or np.unique(compute).size < 2:
        raise AnalysisError(f"{method}: the optimum was found at fewer than 2 compute values; cannot fit "
                            "N_opt(C): add runs that extend the compute range")
    log_c = np.log(compute)
    n_slope, n_intercept = log_slopes(log_c, np.log(n_opt))
    d_slope, d_intercept = log_slopes(log_c, np.log(d_opt))
    return Allocation(
        method=method, compute=np.asarray(compute), n_opt=np.asarray(n_opt), d_opt=np.asarray(d_opt),
        n_exponent=percentile_interval(resampled_slopes[0], float(n_slope), confidence),
        d_exponent=percentile_interval(resampled_slopes[1], float(d_slope), confidence),
        n_coefficient=float(np.exp(n_intercept)), d_coefficient=float(np.exp(d_intercept)), warnings=warnings,
    )
