"""Fit a scaling law as Hoffmann et al. 2022 (App. D) do: a Huber loss on the residuals of log predictions,
minimised with L-BFGS from every point of a grid of starts, with parameters kept within bounds. Starts that fall
behind are dropped after a few evaluations (successive halving, PRUNING): the same best minimum, found at a
fraction of the cost of running every start to convergence.

Inputs and y are divided by their geometric means before fitting (one grid of starts suits any units, and
the problem is well conditioned); the parameters are converted back to the data's units afterwards.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from analysis.errors import AnalysisError
from analysis.laws import Law, predict
from analysis.lbfgs import CONVERGED, PRUNED, STATUS_NAMES, Minima, minimise
from analysis.validate import enough_points, positive_values

DEFAULT_HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, App. D
DEFAULT_MAX_EVALUATIONS = 2000
KEPT_MINIMA = 4  # distinct best minima kept to restart bootstrap refits from
MIN_PADDED = 64  # points are padded to a multiple of this: few data shapes, few compilations
# successive halving of a grid of starts: after this many evaluations, keep this fraction of the running starts
PRUNING = ((8, 1 / 4), (24, 1 / 4), (64, 1 / 4))
MIN_KEPT = 32  # never prune below this many running starts


class Problem(NamedTuple):
    """The data of a fit in scaled units, as the compiled objective receives it."""

    log_x: tuple[jax.Array, ...]
    log_y: jax.Array
    constants: dict[str, jax.Array]
    delta: jax.Array


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything needed to refit the same data: scaled, padded with zero-weight copies (see MIN_PADDED)."""

    law: Law
    log_x: tuple[np.ndarray, ...]
    log_y: np.ndarray
    weights: np.ndarray
    num_points: int  # real points; the rest is padding
    x_scales: tuple[float, ...]
    y_scale: float
    constants: dict[str, float]  # in the data's units
    huber_delta: float
    max_evaluations: int


@dataclasses.dataclass(frozen=True)
class Fit:
    """A fitted law: parameters in the data's units, the best loss, and what went wrong if anything."""

    law: Law
    params: dict[str, float]
    loss: float  # weighted mean Huber loss of the log residuals
    status: str
    evaluations: int
    warnings: tuple[str, ...]
    num_starts: int
    setup: Setup
    minima: np.ndarray  # raw parameters of the best distinct minima, best first

    @property
    def num_points(self) -> int:
        """Number of data points fitted."""
        return self.setup.num_points

    def predict(self, *x: np.ndarray) -> np.ndarray:
        """The fitted law's y at inputs `x` (one array per input of the law)."""
        return predict(self.law, self.params, x, self.setup.constants)


def fit_law(law: Law, x: Sequence[np.ndarray] | np.ndarray, y: np.ndarray, *, weights: np.ndarray | None = None,
            huber_delta: float = DEFAULT_HUBER_DELTA, constants: Mapping[str, float] | None = None,
            bounds: Mapping[str, tuple[float, float]] | None = None, starts: int | None = None,
            max_evaluations: int = DEFAULT_MAX_EVALUATIONS, x_names: Sequence[str] | None = None,
            y_name: str = "y", labels: Sequence | None = None) -> Fit:
    """Fit `law` to y(x). `x` holds one array per input of the law (a plain array for a one-input law);
    `weights` weigh the points; `constants` give the law's fixed values (e.g. random_guess) in y's units;
    `bounds` replace parameter bounds; `starts` takes that many starting values per parameter instead of
    the law's full grid. `x_names`, `y_name` and `labels` (e.g. run ids) only name things in error messages."""
    law = law.with_bounds(bounds) if bounds else law
    setup = prepare(law, x, y, weights=weights, huber_delta=huber_delta, constants=constants,
                    max_evaluations=max_evaluations, x_names=x_names, y_name=y_name, labels=labels)
    raw_starts = start_grid(law, starts)
    minima = solve(setup, raw_starts, np.broadcast_to(setup.weights, (len(raw_starts), len(setup.weights))),
                   rounds=pruning_rounds(len(raw_starts)))
    finite = np.isfinite(minima.value) & (minima.status != PRUNED)
    if not finite.any():
        raise AnalysisError(
            f"{law.name}: no starting point gave a finite loss; the data cannot be described by this law "
            "(check that y lies below any random-guess constant and that x spans a range)"
        )
    order = np.argsort(np.where(finite, minima.value, np.inf))
    best = order[0]
    params = {name: float(value[0]) for name, value in data_units(setup, minima.x[best][None]).items()}
    warnings = _warnings(setup, minima, best, params, y)
    return Fit(law=law, params=params, loss=float(minima.value[best]), status=STATUS_NAMES[int(minima.status[best])],
               evaluations=int(minima.evaluations[best]), warnings=tuple(warnings), num_starts=len(raw_starts),
               setup=setup, minima=_distinct(minima.x[order[finite[order]]], KEPT_MINIMA))


def start_grid(law: Law, per_parameter: int | None = None) -> np.ndarray:
    """Every combination of the parameters' starting values (raw, unconstrained), one start per row
    (Hoffmann et al. 2022, App. D). With `per_parameter`, each parameter contributes that many of its values,
    evenly picked (a coarser grid)."""
    columns = []
    for param in law.params:
        values = np.asarray(param.starts, dtype=np.float64)
        if per_parameter is not None:
            values = values[np.unique(np.round(np.linspace(0, len(values) - 1, per_parameter)).astype(int))]
        columns.append(param.raw(param.inside(values)))
    return np.array(list(itertools.product(*columns)), dtype=np.float64)


def pruning_rounds(num_starts: int) -> tuple[tuple[int, int], ...]:
    """The (evaluations, kept) rounds of successive halving for a grid of `num_starts` starts (see PRUNING)."""
    rounds, kept = [], num_starts
    for evaluations, fraction in PRUNING:
        kept = max(MIN_KEPT, int(np.ceil(kept * fraction)))
        rounds.append((evaluations, kept))
    return tuple(rounds)


def prepare(law: Law, x: Sequence[np.ndarray] | np.ndarray, y: np.ndarray, *, weights: np.ndarray | None = None,
            huber_delta: float = DEFAULT_HUBER_DELTA, constants: Mapping[str, float] | None = None,
            max_evaluations: int = DEFAULT_MAX_EVALUATIONS, x_names: Sequence[str] | None = None,
            y_name: str = "y", labels: Sequence | None = None) -> Setup:
    """Check the data and put it in the fit's scaled, padded form."""
    xs = (x,) if isinstance(x, np.ndarray) and x.ndim == 1 else tuple(x)
    names = tuple(x_names or law.inputs)
    if len(xs) != len(law.inputs):
        raise AnalysisError(f"{law.name} takes {len(law.inputs)} input(s) ({', '.join(law.inputs)}) but got "
                            f"{len(xs)}; give one column per input, e.g. --x {','.join(law.default_columns)}")
    xs = tuple(positive_values(values, f"x column {name!r}", labels) for values, name in zip(xs, names))
    y = positive_values(y, f"y column {y_name!r}", labels)
    if any(len(values) != len(y) for values in xs):
        raise AnalysisError(f"x and y have different lengths ({[len(v) for v in xs]} vs {len(y)})")
    if not len(y):
        raise AnalysisError(f"{law.name} has no points to fit: add runs, or check which rows were dropped above")
    for values, name in zip(xs, names):
        if np.unique(values).size < 2:
            raise AnalysisError(f"x column {name!r} has a single value ({values[0]:g}); {law.name} needs it to "
                                "vary: add runs of other sizes")
    weights = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != y.shape or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise AnalysisError("weights must be one finite, non-negative number per point")
    enough_points(int(np.sum(weights > 0)), len(law.params), f"law {law.name}")
    if not huber_delta > 0:
        raise AnalysisError(f"the Huber delta must be positive, got {huber_delta}")
    fixed = _constants(law, constants)
    used = weights > 0
    x_scales = tuple(float(np.exp(np.mean(np.log(values[used])))) for values in xs)
    y_scale = float(np.exp(np.mean(np.log(y[used]))))
    size = -(-len(y) // MIN_PADDED) * MIN_PADDED

    def pad(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, np.full(size - len(values), values[0])])

    return Setup(
        law=law, log_x=tuple(pad(np.log(values / scale)) for values, scale in zip(xs, x_scales)),
        log_y=pad(np.log(y / y_scale)), weights=np.concatenate([weights, np.zeros(size - len(y))]),
        num_points=len(y), x_scales=x_scales, y_scale=y_scale, constants=fixed, huber_delta=float(huber_delta),
        max_evaluations=int(max_evaluations),
    )


def solve(setup: Setup, raw_starts: np.ndarray, weights: np.ndarray,
          rounds: Sequence[tuple[int, int]] = ()) -> Minima:
    """Minimise the fit's loss from each row of `raw_starts`, with that row's point weights, pruning the starts
    as `rounds` say (only where every row has the same weights; see `minimise`)."""
    with jax.enable_x64(True):
        return minimise(objective(setup.law), raw_starts, weights, problem(setup),
                        max_evaluations=setup.max_evaluations, rounds=rounds)


def problem(setup: Setup) -> Problem:
    """The data as the compiled objective takes it (call inside `jax.enable_x64(True)`)."""
    return Problem(
        log_x=tuple(jnp.asarray(values) for values in setup.log_x), log_y=jnp.asarray(setup.log_y),
        constants={name: jnp.asarray(value / setup.y_scale) for name, value in setup.constants.items()},
        delta=jnp.asarray(setup.huber_delta),
    )


def data_units(setup: Setup, raws: np.ndarray) -> dict[str, np.ndarray]:
    """Parameters in the data's units for raw parameter rows (one value per row)."""
    with jax.enable_x64(True):
        scaled = {name: np.asarray(value) for name, value in setup.law.natural(jnp.asarray(raws)).items()}
    return {name: np.asarray(value, dtype=np.float64)
            for name, value in setup.law.to_data_units(scaled, setup.x_scales, setup.y_scale).items()}


@functools.cache
def objective(law: Law) -> Callable[[jax.Array, jax.Array, Problem], jax.Array]:
    """The loss of `law` as a function of (raw parameters, point weights, data): the weighted mean Huber loss
    of the log residuals. One function object per law, so its compilations are reused."""

    def loss(raw: jax.Array, weights: jax.Array, data: Problem) -> jax.Array:
        residual = law.log_predict(law.natural(raw), data.log_x, data.constants) - data.log_y
        size = jnp.abs(residual)
        huber = jnp.where(size <= data.delta, 0.5 * residual**2, data.delta * (size - 0.5 * data.delta))
        return jnp.sum(weights * huber) / jnp.sum(weights)

    return loss


def _constants(law: Law, constants: Mapping[str, float] | None) -> dict[str, float]:
    fixed = {}
    for name in law.constants:
        value = (constants or {}).get(name)
        if value is None or not np.isfinite(value) or value <= 0:
            raise AnalysisError(
                f"law {law.name} needs a positive constant {name!r} (the error of random guessing, e.g. "
                f"1 - 1/num_classes for top-1 error), got {value}; pass --random-guess VALUE"
            )
        fixed[name] = float(value)
    return fixed


def _warnings(setup: Setup, minima: Minima, best: int, params: dict[str, float], y: np.ndarray) -> list[str]:
    """Explicit warnings about a fit that should not be trusted as it is."""
    law, warnings = setup.law, []
    if minima.status[best] != CONVERGED:
        warnings.append(
            f"{law.name}: the best start did not converge ({STATUS_NAMES[int(minima.status[best])]} after "
            f"{minima.evaluations[best]} evaluations); its parameters may be off: raise the evaluation limit "
            "or check the data"
        )
    for param, raw in zip(law.params, minima.x[best]):
        side = param.bound_reached(float(raw))
        if side:
            bound = param.low if side == "lower" else param.high
            where = f"its {side} bound ({bound:g})" if np.isfinite(bound) else "infinity"
            hint = (f"a simpler law may do, or, if a wider range makes sense, --bound {law.name}.{param.name}="
                    "LOW:HIGH" if param.unit_free and np.isfinite(bound) else "a simpler law may do")
            warnings.append(f"{law.name}: {param.name} = {params[param.name]:.4g} ran to {where}: the data do "
                            f"not pin it down; {hint}")
    for name, value in setup.constants.items():
        above = int(np.sum(np.asarray(y) >= value))
        if above:
            warnings.append(f"{law.name}: {above} point(s) have y >= {name} = {value:g}, which the law cannot "
                            "reach; check the constant")
    return warnings


def _distinct(raws: np.ndarray, count: int) -> np.ndarray:
    """The first `count` rows of `raws` that differ from every earlier kept row."""
    kept: list[np.ndarray] = []
    for raw in raws:
        if all(np.max(np.abs(raw - other)) > 1e-3 for other in kept):
            kept.append(raw)
            if len(kept) == count:
                break
    return np.array(kept)
