"""Benchmark: the vectorised multi-start fit of the joint law against a plain loop of scipy.optimize.minimize
(L-BFGS-B), one start at a time, on the same data, objective and starting points, in the same process. The
vectorised fit runs on JAX's default device (a GPU where there is one); scipy's objective and gradient always on
the CPU, where a per-start loop belongs, so the comparison is fair on an accelerator too."""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from analysis.fit import fit_law, objective, prepare, problem, start_grid
from analysis.laws import CHINCHILLA
from analysis.lbfgs import GTOL
from analysis.synthetic import sample_law

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # their fitted L(N, D), eq. 10


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Timings (seconds) and best losses of both ways of fitting from every start."""

    starts: int
    points: int
    first_seconds: float  # vectorised, first call: includes compiling
    vectorised_seconds: float  # vectorised, second call
    scipy_seconds: float  # of the scipy loop over `scipy_starts` of the starts
    vectorised_loss: float
    scipy_loss: float
    scipy_starts: int

    @property
    def scipy_seconds_all(self) -> float:
        """The scipy loop's time over every start (scaled from the starts it ran where it ran a sample)."""
        return self.scipy_seconds * self.starts / self.scipy_starts

    @property
    def speedup(self) -> float:
        """scipy loop time over vectorised (compiled) time, for every start."""
        return self.scipy_seconds_all / self.vectorised_seconds


def benchmark_fit_starts(points: int = 400, per_parameter: int | None = None, noise: float = 0.02,
                         seed: int = 0, scipy_every: int = 1) -> BenchResult:
    """Fit Hoffmann et al.'s L(N, D) to `points` noisy samples from every start of the law's grid (4,500
    starts; `per_parameter` values per parameter for a smaller one), both ways; time both. The scipy loop runs
    from every `scipy_every`-th start of the grid (all by default; a sample keeps a slow CPU's loop short)."""
    rng = np.random.default_rng(seed)
    x = (10 ** rng.uniform(7, 10, points), 10 ** rng.uniform(9, 12, points))
    y = sample_law(CHINCHILLA, HOFFMANN, x, noise=noise, seed=seed + 1)
    started = time.perf_counter()
    fit_law(CHINCHILLA, x, y, starts=per_parameter)
    first = time.perf_counter() - started
    started = time.perf_counter()
    fit = fit_law(CHINCHILLA, x, y, starts=per_parameter)
    vectorised = time.perf_counter() - started
    raw_starts = start_grid(CHINCHILLA, per_parameter)
    scipy_starts = raw_starts[::scipy_every]
    started = time.perf_counter()
    scipy_loss = _scipy_loop(x, y, scipy_starts)
    return BenchResult(starts=len(raw_starts), points=points, first_seconds=first, vectorised_seconds=vectorised,
                       scipy_seconds=time.perf_counter() - started, vectorised_loss=fit.loss, scipy_loss=scipy_loss,
                       scipy_starts=len(scipy_starts))


def format_bench(result: BenchResult) -> str:
    """The benchmark's numbers as text."""
    gap = abs(result.vectorised_loss - result.scipy_loss) / result.scipy_loss
    return "\n".join([
        f"joint law L(N, D) = E + A/N^alpha + B/D^beta, {result.points} points, {result.starts} starting points",
        f"vectorised L-BFGS (jax.vmap): {result.vectorised_seconds:8.2f} s   (first call, with compiling: "
        f"{result.first_seconds:.2f} s)   best loss {result.vectorised_loss:.10g}",
        f"scipy.optimize.minimize loop: {result.scipy_seconds_all:8.2f} s   best loss {result.scipy_loss:.10g}"
        + (f"   (ran {result.scipy_starts} of the starts in {result.scipy_seconds:.2f} s; time scaled to all)"
           if result.scipy_starts < result.starts else ""),
        f"speed-up: {result.speedup:.1f}x (first call: {result.scipy_seconds_all / result.first_seconds:.1f}x); "
        f"best losses differ by {gap:.2e} (relative)",
    ])


def _scipy_loop(x: tuple[np.ndarray, ...], y: np.ndarray, raw_starts: np.ndarray) -> float:
    """Best loss of scipy's L-BFGS-B run from each start in turn, on the same scaled objective (computed with its
    gradient on the CPU)."""
    setup = prepare(CHINCHILLA, x, y)
    with jax.enable_x64(True), jax.default_device(jax.devices("cpu")[0]):
        loss, data, weights = objective(CHINCHILLA), problem(setup), jnp.asarray(setup.weights)
        value_and_grad = jax.jit(jax.value_and_grad(lambda raw: loss(raw, weights, data)))

        def function(raw: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(raw)
            return float(value), np.asarray(grad)

        best = np.inf
        for start in raw_starts:
            result = scipy.optimize.minimize(function, start, jac=True, method="L-BFGS-B",
                                             options={"maxiter": 2000, "ftol": 1e-15, "gtol": GTOL})
            if np.isfinite(result.fun):
                best = min(best, float(result.fun))
    return best
