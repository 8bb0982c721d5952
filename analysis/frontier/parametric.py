"""Hoffmann et al. 2022 approach 3: the compute-optimal model size from a fitted joint law L(N, D)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analysis.bootstrap import DEFAULT_CONFIDENCE, Bootstrap
from analysis.errors import AnalysisError
from analysis.fit import Fit
from analysis.frontier.allocation import Allocation, allocation, log_slopes
from analysis.frontier.flops import FlopsModel
from analysis.laws import predict

METHOD = "parametric L(N, D) (Hoffmann approach 3)"
SEARCH_DECADES = 3.0  # the optimal size is searched this many decades beyond the fitted sizes
SEARCH_POINTS = 400


def parametric_frontier(fit: Fit, flops: FlopsModel, compute: np.ndarray, *, boot: Bootstrap | None = None,
                        confidence: float = DEFAULT_CONFIDENCE) -> Allocation:
    """Minimise the fitted L(N, D = C / FLOPs-per-example(N)) over N at each compute; fit N_opt(C) and
    D_opt(C) through the minima. Intervals come from the bootstrap refits of the law, if given."""
    if fit.law.inputs != ("N", "D"):
        raise AnalysisError(f"the {METHOD} needs a joint law of model and data size (chinchilla or rosenfeld); "
                            f"{fit.law.name} has inputs {fit.law.inputs}")
    compute = np.asarray(compute, dtype=np.float64)
    fitted = np.exp(fit.setup.log_x[0][: fit.num_points]) * fit.setup.x_scales[0]
    sizes = np.geomspace(fitted.min() / 10**SEARCH_DECADES, fitted.max() * 10**SEARCH_DECADES, SEARCH_POINTS)
    n_opt = _optimal_sizes(fit, {name: np.asarray(value) for name, value in fit.params.items()}, sizes, compute, flops)
    found = np.isfinite(n_opt)
    warnings = () if found.all() else (
        f"{METHOD}: at {int((~found).sum())} compute value(s) the optimum lies beyond the searched sizes "
        f"({sizes[0]:.3g} to {sizes[-1]:.3g}) and was left out",)
    slopes = (np.array([]), np.array([]))
    if boot is not None and len(boot.samples[fit.law.names[0]]):
        samples = {name: values[:, None, None] for name, values in boot.samples.items()}
        resampled = _optimal_sizes(fit, samples, sizes, compute, flops)
        finite = np.isfinite(resampled)
        log_c = np.log(compute)[None, :]
        n_slopes = log_slopes(log_c, np.log(np.where(finite, resampled, 1.0)), finite)[0]
        d_log = np.log(np.where(finite, flops.examples(compute[None, :], np.where(finite, resampled, 1.0)), 1.0))
        slopes = (n_slopes, log_slopes(log_c, d_log, finite)[0])
    return allocation(METHOD, compute[found], n_opt[found], flops.examples(compute[found], n_opt[found]), slopes,
                      confidence, warnings)


def _optimal_sizes(fit: Fit, params: Mapping[str, np.ndarray], sizes: np.ndarray, compute: np.ndarray,
                   flops: FlopsModel) -> np.ndarray:
    """argmin over `sizes` of L(N, C / FLOPs-per-example(N)) for each compute (last axis), refined by a
    parabola through the best grid point and its neighbours; NaN where the best is at the edge of the grid."""
    n_grid = sizes[None, :]
    data = flops.examples(compute[:, None], n_grid)
    log_loss = np.log(predict(fit.law, params, (np.broadcast_to(n_grid, data.shape), data), fit.setup.constants))
    best = np.argmin(log_loss, axis=-1)
    inner = (best > 0) & (best < len(sizes) - 1)
    index = np.clip(best, 1, len(sizes) - 2)
    left, middle, right = (np.take_along_axis(log_loss, (index + shift)[..., None], axis=-1)[..., 0]
                           for shift in (-1, 0, 1))
    step = np.log(sizes[1] / sizes[0])
    curvature = left - 2 * middle + right
    offset = np.where(curvature > 0, 0.5 * (left - right) / np.where(curvature > 0, curvature, 1.0), 0.0)
    return np.where(inner, sizes[index] * np.exp(offset * step), np.nan)
