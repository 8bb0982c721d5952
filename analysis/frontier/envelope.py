"""Hoffmann et al. 2022 approach 1: at each compute, the run with the lowest error over all training curves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.bootstrap import DEFAULT_CONFIDENCE
from analysis.errors import AnalysisError
from analysis.frontier.allocation import Allocation, allocation, log_slopes
from analysis.table.contract import require_columns
from analysis.validate import positive_column

METHOD = "envelope (Hoffmann approach 1)"
MIN_SIZES = 3


@dataclasses.dataclass(frozen=True)
class Envelope:
    """The best y at each compute of a log-spaced grid, and the optimal allocation read off it."""

    compute: np.ndarray
    best: np.ndarray  # lowest y over runs at each compute (NaN where no run reaches it)
    allocation: Allocation


def envelope_frontier(frame: pd.DataFrame, y: str, *, grid_points: int = 120, resamples: int = 200, seed: int = 0,
                      confidence: float = DEFAULT_CONFIDENCE) -> Envelope:
    """Interpolate every run's curve (log y against log compute) on a compute grid and take the best run at
    each grid point. Points where the best run is the smallest or largest size reaching that compute are left
    out (the optimum is not bracketed there). Intervals come from resampling whole runs."""
    require_columns(frame, ["run_id", "params", "compute", "examples_seen", y], f"the {METHOD}")
    columns = ("params", "compute", "examples_seen", y)
    frame = frame.assign(**{column: positive_column(frame, column) for column in columns})
    runs = [run.sort_values("compute") for _, run in frame.groupby("run_id", sort=True)]
    params = np.array([run["params"].iloc[0] for run in runs])
    sizes = np.unique(params)
    if sizes.size < MIN_SIZES:
        raise AnalysisError(f"the {METHOD} needs runs of at least {MIN_SIZES} model sizes; the table has "
                            f"{sizes.size} ({', '.join(f'{size:.3g}' for size in sizes)}): add runs of other sizes")
    per_example = np.array([np.median(run["compute"] / run["examples_seen"]) for run in runs])
    grid = np.linspace(min(np.log(run["compute"].iloc[0]) for run in runs),
                       max(np.log(run["compute"].iloc[-1]) for run in runs), grid_points)
    curves = np.full((len(runs), grid_points), np.inf)
    for row, run in enumerate(runs):
        log_c, log_y = np.log(run["compute"].to_numpy()), np.log(run[y].to_numpy())
        inside = (grid >= log_c[0]) & (grid <= log_c[-1])
        curves[row, inside] = np.interp(grid[inside], log_c, log_y)

    winner, kept = _optimum(curves, np.log(params), np.ones(len(runs), bool))
    if kept.sum() < 3:
        raise AnalysisError(f"the {METHOD} is bracketed at only {int(kept.sum())} compute values (elsewhere the "
                            "best run is the smallest or largest model reaching that compute): add smaller and "
                            "larger models")
    compute = np.exp(grid)
    n_opt, d_opt = params[winner[kept]], compute[kept] / per_example[winner[kept]]
    drawn = np.random.default_rng(seed).integers(0, len(runs), size=(resamples, len(runs)))
    chosen = np.zeros((resamples, len(runs)), bool)
    np.put_along_axis(chosen, drawn, True, axis=1)
    winners, kepts = _optimum(curves, np.log(params), chosen)
    slopes = tuple(log_slopes(grid[None, :], np.log(values), kepts)[0]
                   for values in (params[winners], compute[None, :] / per_example[winners]))
    best = np.exp(np.min(curves, axis=0))
    return Envelope(
        compute=compute, best=np.where(np.isfinite(best), best, np.nan),
        allocation=allocation(METHOD, compute[kept], n_opt, d_opt, (slopes[0], slopes[1]), confidence),
    )


def _optimum(curves: np.ndarray, log_params: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Winning run at each grid point among the `chosen` runs (last axis: runs), and where it is bracketed."""
    masked = np.where(chosen[..., :, None], curves, np.inf)
    winner = np.argmin(masked, axis=-2)
    reached = np.isfinite(masked)
    smallest = np.min(np.where(reached, log_params[:, None], np.inf), axis=-2)
    largest = np.max(np.where(reached, log_params[:, None], -np.inf), axis=-2)
    size = log_params[winner]
    return winner, np.isfinite(np.min(masked, axis=-2)) & (size > smallest) & (size < largest)
