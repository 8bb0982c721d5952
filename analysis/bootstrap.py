"""Bootstrap confidence intervals: resample whole runs (or points), refit from the best minima of the fit.

Rows of one run are not independent (one training curve, one seed), so a study resamples runs wherever its
rows carry a run id (`resample_runs`); resampling single rows is the option for tables without one.

A resample is a vector of multiplicities, so every refit has the same shape and all of them run in one
vectorised batch (resamples x kept minima). `Estimate` and `percentile_interval` turn any resampled values
(here, and in the frontiers) into a point estimate with a percentile interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from analysis.errors import AnalysisError
from analysis.fit import Fit, data_units, solve
from analysis.laws import predict
from analysis.lbfgs import CONVERGED

DEFAULT_CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (NaN bounds when there is no interval)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """value, low, high as a dict (for JSON)."""
        return dataclasses.asdict(self)


def percentile_interval(values: np.ndarray, estimate: float, confidence: float) -> Estimate:
    """`estimate` with the central `confidence` interval of the finite resampled `values`."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return Estimate(float(estimate), float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Estimate(float(estimate), float(low), float(high))


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """Parameters refitted on resampled data; intervals are percentiles of the converged refits."""

    fit: Fit
    samples: dict[str, np.ndarray]  # parameters (data units) of each converged refit
    confidence: float
    requested: int
    resampled: str  # "rows" or "runs"
    warnings: tuple[str, ...]

    def interval(self, values: np.ndarray, estimate: float) -> Estimate:
        """Percentile interval of per-resample `values` around the full-data `estimate`."""
        return percentile_interval(values, estimate, self.confidence)

    def params(self) -> dict[str, Estimate]:
        """Every parameter with its interval."""
        return {name: self.interval(self.samples[name], value) for name, value in self.fit.params.items()}

    def derived(self) -> dict[str, Estimate]:
        """The law's derived quantities with their intervals."""
        return {item.name: self.quantity(item.value) for item in self.fit.law.derived}

    def quantity(self, function: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> Estimate:
        """Any function of the parameters (vectorised over resamples), with its interval."""
        estimate = float(np.asarray(function({k: np.asarray(v) for k, v in self.fit.params.items()})))
        return self.interval(function(self.samples), estimate)

    def band(self, *x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise interval of the prediction at inputs `x`: (low, high) arrays."""
        columns = {name: values[:, None] for name, values in self.samples.items()}
        curves = predict(self.fit.law, columns, [np.asarray(values)[None, :] for values in x],
                         self.fit.setup.constants)
        tail = (1.0 - self.confidence) / 2.0
        low, high = np.nanquantile(curves, [tail, 1.0 - tail], axis=0)
        return low, high


def bootstrap(fit: Fit, resamples: int, *, seed: int = 0, groups: Sequence | None = None,
              confidence: float = DEFAULT_CONFIDENCE) -> Bootstrap:
    """Refit `fit` on `resamples` resamples of its points (of whole groups, e.g. run ids, if given)."""
    if resamples < 2:
        raise AnalysisError(f"the bootstrap needs at least 2 resamples, got {resamples}")
    if not 0 < confidence < 1:
        raise AnalysisError(f"confidence must lie between 0 and 1, got {confidence}")
    setup, starts = fit.setup, fit.minima
    counts = multiplicities(setup.num_points, resamples, np.random.default_rng(seed), groups)
    weights = np.zeros((resamples, len(setup.weights)))
    weights[:, : setup.num_points] = counts * setup.weights[: setup.num_points]
    minima = solve(setup, np.tile(starts, (resamples, 1)), np.repeat(weights, len(starts), axis=0))
    values = np.where(np.isfinite(minima.value), minima.value, np.inf).reshape(resamples, len(starts))
    best = np.arange(resamples) * len(starts) + np.argmin(values, axis=1)
    converged = best[minima.status[best] == CONVERGED]
    samples = data_units(setup, minima.x[converged]) if converged.size else {name: np.array([]) for name in fit.params}
    warnings = []
    failed = resamples - converged.size
    if failed > 0.1 * resamples:
        warnings.append(f"{fit.law.name}: {failed} of {resamples} bootstrap refits did not converge and were left "
                        "out; the intervals may be too narrow")
    return Bootstrap(fit=fit, samples=samples, confidence=confidence, requested=resamples,
                     resampled="rows" if groups is None else "runs", warnings=tuple(warnings))


def resample_runs(run_ids: Sequence | None, by_run: bool | None) -> bool:
    """Whether to resample whole runs: as asked (`by_run` True or False), or by default (None) wherever the
    rows carry run ids (`run_ids`, None when the table has none) from at least 2 runs."""
    if by_run is not None:
        return by_run
    return run_ids is not None and np.unique(np.asarray(run_ids).astype(str)).size >= 2


def multiplicities(num_points: int, resamples: int, rng: np.random.Generator, groups: Sequence | None) -> np.ndarray:
    """How often each point is drawn in each resample (resamples x points): points drawn one by one, or, with
    `groups` (e.g. run ids), whole groups drawn with replacement, every point of a group as often as the group."""
    if groups is None:
        return rng.multinomial(num_points, np.full(num_points, 1.0 / num_points), size=resamples).astype(np.float64)
    groups = np.asarray(groups)
    if len(groups) != num_points:
        raise AnalysisError(f"groups must name one group per point ({num_points}), got {len(groups)}")
    names, member = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise AnalysisError("resampling runs needs points from at least 2 runs; resample rows instead")
    drawn = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=resamples)
    return drawn[:, member].astype(np.float64)
