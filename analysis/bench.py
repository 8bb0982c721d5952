"""Benchmark: the vectorised multi-start fit of the joint law against two references on the same data, objective
and starting points, in the same process: a plain loop of scipy.optimize.minimize (L-BFGS-B), one start at a
time, and optax's L-BFGS under one jax.vmap over the starts. The vectorised fit and optax run on JAX's default
device (a GPU where there is one); scipy's objective and gradient always on the CPU, where a per-start loop
belongs, so the comparison is fair on an accelerator too."""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from analysis.fit import Problem, Setup, fit_law, objective, problem, start_grid
from analysis.laws import CHINCHILLA
from analysis.lbfgs import FTOL, GTOL, Objective
from analysis.synthetic import sample_law

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # their fitted L(N, D), eq. 10


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Timings (seconds) and best losses of the three ways of fitting from every start."""

    starts: int
    points: int
    first_seconds: float  # vectorised, first call: includes compiling
    vectorised_seconds: float  # vectorised, second call
    scipy_seconds: float  # of the scipy loop over `scipy_starts` of the starts
    vectorised_loss: float
    scipy_loss: float
    scipy_starts: int
    optax_seconds: float  # of optax's L-BFGS under vmap over `optax_starts` of the starts, second call
    optax_loss: float
    optax_starts: int

    @property
    def scipy_seconds_all(self) -> float:
        """The scipy loop's time over every start (scaled from the starts it ran where it ran a sample)."""
        return self.scipy_seconds * self.starts / self.scipy_starts

    @property
    def optax_seconds_all(self) -> float:
        """optax's time over every start, scaled from the sample it ran: a lower bound where it ran a sample, as
        a vmap over more starts waits on the slowest of more."""
        return self.optax_seconds * self.starts / self.optax_starts

    @property
    def speedup(self) -> float:
        """scipy loop time over vectorised (compiled) time, for every start."""
        return self.scipy_seconds_all / self.vectorised_seconds

    @property
    def optax_speedup(self) -> float:
        """scipy loop time over optax's (compiled) time, for every start."""
        return self.scipy_seconds_all / self.optax_seconds_all


def benchmark_fit_starts(points: int = 400, per_parameter: int | None = None, noise: float = 0.02,
                         seed: int = 0, scipy_every: int = 1, optax_every: int = 10) -> BenchResult:
    """Fit Hoffmann et al.'s L(N, D) to `points` noisy samples from every start of the law's grid (4,500
    starts; `per_parameter` values per parameter for a smaller one), three ways; time each. The scipy loop runs
    from every `scipy_every`-th start of the grid (all by default; a sample keeps a slow CPU's loop short), optax
    from every `optax_every`-th (its vmap runs every start until the slowest one is done)."""
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
    scipy_starts, optax_starts = raw_starts[::scipy_every], raw_starts[::optax_every]
    optax_seconds, optax_loss = _optax_vmap(fit.setup, optax_starts)
    started = time.perf_counter()
    scipy_loss = _scipy_loop(fit.setup, scipy_starts)
    return BenchResult(starts=len(raw_starts), points=points, first_seconds=first, vectorised_seconds=vectorised,
                       scipy_seconds=time.perf_counter() - started, vectorised_loss=fit.loss, scipy_loss=scipy_loss,
                       scipy_starts=len(scipy_starts), optax_seconds=optax_seconds, optax_loss=optax_loss,
                       optax_starts=len(optax_starts))


def format_bench(result: BenchResult) -> str:
    """The benchmark's numbers as text: each way's time for every start, its best loss, and scipy's time over it."""

    def sampled(ran: int, seconds: float, note: str) -> str:
        if ran == result.starts:
            return ""
        return f"   (ran {ran} of the starts in {seconds:.2f} s; time scaled to all{note})"

    def gap(loss: float) -> str:
        return f"{abs(loss - result.scipy_loss) / result.scipy_loss:.1e}"

    return "\n".join([
        f"joint law L(N, D) = E + A/N^alpha + B/D^beta, {result.points} points, {result.starts} starting points",
        f"vectorised L-BFGS (jax.vmap, pruned): {result.vectorised_seconds:8.2f} s   {result.speedup:6.1f}x scipy   "
        f"best loss {result.vectorised_loss:.10g} (off scipy's by {gap(result.vectorised_loss)}; first call, with "
        f"compiling: {result.first_seconds:.2f} s, {result.scipy_seconds_all / result.first_seconds:.1f}x)",
        f"optax.lbfgs under jax.vmap:          {result.optax_seconds_all:8.2f} s   "
        f"{result.optax_speedup:6.1f}x scipy   best loss {result.optax_loss:.10g} "
        f"(off scipy's by {gap(result.optax_loss)})"
        + sampled(result.optax_starts, result.optax_seconds, ", a lower bound"),
        f"scipy.optimize.minimize loop:        {result.scipy_seconds_all:8.2f} s      1.0x         "
        f"best loss {result.scipy_loss:.10g}" + sampled(result.scipy_starts, result.scipy_seconds, ""),
    ])


def _scipy_loop(setup: Setup, raw_starts: np.ndarray) -> float:
    """Best loss of scipy's L-BFGS-B run from each start in turn, on the same scaled objective (computed with its
    gradient on the CPU)."""
    with jax.enable_x64(True), jax.default_device(jax.devices("cpu")[0]):
        loss, data, weights = objective(setup.law), problem(setup), jnp.asarray(setup.weights)
        value_and_grad = jax.jit(jax.value_and_grad(lambda raw: loss(raw, weights, data)))

        def function(raw: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(raw)
            return float(value), np.asarray(grad)

        best = np.inf
        for start in raw_starts:
            result = scipy.optimize.minimize(function, start, jac=True, method="L-BFGS-B",
                                             options={"maxiter": setup.max_evaluations, "ftol": 1e-15, "gtol": GTOL})
            if np.isfinite(result.fun):
                best = min(best, float(result.fun))
    return best


def _optax_vmap(setup: Setup, raw_starts: np.ndarray) -> tuple[float, float]:
    """Seconds (compiled beforehand) and best loss of optax's L-BFGS (zoom line search) run from every start at
    once under jax.vmap, each start stopping as the vectorised fit's do (gradient below GTOL or a relative
    decrease below FTOL)."""
    with jax.enable_x64(True):
        args = (jnp.asarray(raw_starts), jnp.asarray(setup.weights), problem(setup))
        compiled = _optax_minima.lower(objective(setup.law), *args, setup.max_evaluations).compile()
        started = time.perf_counter()
        values = np.asarray(compiled(*args))
        seconds = time.perf_counter() - started
    return seconds, float(np.min(np.where(np.isfinite(values), values, np.inf)))


@functools.partial(jax.jit, static_argnames=("loss", "max_iterations"))
def _optax_minima(loss: Objective, starts: jax.Array, weights: jax.Array, data: Problem,
                  max_iterations: int) -> jax.Array:
    """The loss each start reaches with optax.lbfgs, as optax's documentation runs it, vmapped over the starts."""

    def function(raw: jax.Array) -> jax.Array:
        return loss(raw, weights, data)

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(function)

    def one_start(start: jax.Array) -> jax.Array:
        def step(carry: tuple) -> tuple:
            raw, state, _, iteration = carry
            previous = optax.tree.get(state, "value")
            value, grad = value_and_grad(raw, state=state)
            updates, state = solver.update(grad, state, raw, value=value, grad=grad, value_fn=function)
            return optax.apply_updates(raw, updates), state, previous, iteration + 1

        def going(carry: tuple) -> jax.Array:
            _, state, previous, iteration = carry
            value, grad = optax.tree.get(state, "value"), optax.tree.get(state, "grad")
            done = (jnp.max(jnp.abs(grad)) <= GTOL) | (previous - value <= FTOL * jnp.abs(value))
            return (iteration < 2) | ((iteration < max_iterations) & ~done & jnp.isfinite(value))

        raw = jax.lax.while_loop(going, step, (start, solver.init(start), jnp.asarray(jnp.inf), 0))[0]
        return function(raw)

    return jax.vmap(one_start)(starts)
