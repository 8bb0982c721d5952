"""What a scaling law is to the fitter: a formula in log space, bounded parameters with starting values, units;
and `predict`, which evaluates one."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.errors import AnalysisError

Params = Mapping[str, jax.Array | np.ndarray | float]
LogPredict = Callable[[Params, Sequence[jax.Array], Params], jax.Array]
ToDataUnits = Callable[[Params, Sequence[float], float], dict[str, np.ndarray]]

RAW_AT_BOUND = 9.0  # |raw| beyond this: within ~1e-4 of a bound (of the width, or of the scaled unit)
INSIDE = 1e-3  # starting values are kept this fraction of the bound's width inside it


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: its bounds, its starting values (for inputs and y divided by their geometric means)."""

    name: str
    low: float
    high: float
    starts: tuple[float, ...]
    meaning: str
    unit_free: bool = True  # its value does not depend on the units of x and y, so its bounds can be changed

    def natural(self, raw: jax.Array) -> jax.Array:
        """The parameter's value for an unconstrained raw value: exp, sigmoid or identity as the bounds need."""
        if math.isinf(self.low) and math.isinf(self.high):
            return raw
        if math.isinf(self.high):
            return self.low + jnp.exp(raw)
        if math.isinf(self.low):
            return self.high - jnp.exp(raw)
        return self.low + (self.high - self.low) * jax.nn.sigmoid(raw)

    def raw(self, value: np.ndarray) -> np.ndarray:
        """Inverse of `natural`, for values strictly inside the bounds."""
        value = np.asarray(value, dtype=np.float64)
        if math.isinf(self.low) and math.isinf(self.high):
            return value
        if math.isinf(self.high):
            return np.log(value - self.low)
        if math.isinf(self.low):
            return np.log(self.high - value)
        fraction = (value - self.low) / (self.high - self.low)
        return np.log(fraction) - np.log1p(-fraction)

    def inside(self, value: np.ndarray) -> np.ndarray:
        """`value` clipped to lie a little inside the bounds (starting points must be interior)."""
        width = self.high - self.low
        margin = INSIDE * (width if math.isfinite(width) else 1.0)
        return np.clip(value, self.low + margin, self.high - margin)

    def bound_reached(self, raw: float) -> str | None:
        """'lower' or 'upper' if the raw value has run off to a bound (or to infinity), else None."""
        if math.isinf(self.low) and math.isinf(self.high):
            return None
        if math.isinf(self.low):  # high - exp(raw): raw -> -inf reaches the upper bound
            return "upper" if raw < -RAW_AT_BOUND else "lower" if raw > RAW_AT_BOUND else None
        return "lower" if raw < -RAW_AT_BOUND else "upper" if raw > RAW_AT_BOUND else None


@dataclasses.dataclass(frozen=True)
class Derived:
    """A quantity computed from a law's parameters (in data units), reported with a bootstrap interval."""

    name: str
    meaning: str
    value: Callable[[Params], np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class Law:
    """A scaling law. Laws compare and hash by identity, so compiled fits are reused per law object."""

    name: str
    formula: str
    source: str
    inputs: tuple[str, ...]  # the symbols of its inputs, e.g. ("C",) or ("N", "D")
    default_columns: tuple[str, ...]  # the results-table columns those inputs are read from by default
    params: tuple[Param, ...]
    log_predict: LogPredict  # (params, log inputs, constants) -> log of the predicted y
    to_data_units: ToDataUnits  # (params fitted on scaled data, input scales, y scale) -> params in data units
    constants: tuple[str, ...] = ()  # fixed values in the units of y (e.g. the random-guess error)
    derived: tuple[Derived, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in order."""
        return tuple(param.name for param in self.params)

    def natural(self, raw: jax.Array) -> dict[str, jax.Array]:
        """Parameter values (in the fit's scaled units) for a raw vector (last axis: the parameters)."""
        return {param.name: param.natural(raw[..., index]) for index, param in enumerate(self.params)}

    def with_bounds(self, bounds: Mapping[str, tuple[float, float]]) -> Law:
        """A copy of the law with some parameters' bounds replaced (only unit-free parameters)."""
        unknown = sorted(set(bounds) - set(self.names))
        if unknown:
            raise_bad_bound(self, f"{self.name} has no parameter(s) {unknown}")
        params = []
        for param in self.params:
            if param.name in bounds:
                low, high = (float(value) for value in bounds[param.name])
                if not param.unit_free:
                    raise_bad_bound(self, f"the value of {param.name!r} depends on the units of the data, so its "
                                          "bounds are fixed")
                if not low < high:
                    raise_bad_bound(self, f"bound {param.name}={low}:{high} is empty; give LOW < HIGH")
                param = dataclasses.replace(param, low=low, high=high)
            params.append(param)
        return dataclasses.replace(self, params=tuple(params))


def predict(law: Law, params: Mapping[str, np.ndarray | float], x: Sequence[np.ndarray],
            constants: Mapping[str, float] | None = None) -> np.ndarray:
    """`law`'s y at inputs `x` (one array per input), in float64; `params` and `constants` are in the data's
    units, and parameter arrays broadcast against the inputs."""
    with jax.enable_x64(True):
        log_x = tuple(jnp.log(jnp.asarray(values, jnp.float64)) for values in x)
        values = {name: jnp.asarray(params[name], jnp.float64) for name in law.names}
        fixed = {name: jnp.asarray((constants or {})[name], jnp.float64) for name in law.constants}
        return np.exp(np.asarray(_compiled(law)(values, log_x, fixed)))


@functools.cache
def _compiled(law: Law) -> Callable:
    return jax.jit(law.log_predict)


def raise_bad_bound(law: Law, problem: str) -> None:
    """Raise the error for an unusable bound, listing the parameters whose bounds may be set."""
    settable = [param.name for param in law.params if param.unit_free]
    raise AnalysisError(f"{problem}; bounds can be set for {settable}")


def log_grid(low: float, high: float, count: int) -> tuple[float, ...]:
    """`count` values spaced evenly in log space from exp(low) to exp(high)."""
    return tuple(float(value) for value in np.exp(np.linspace(low, high, count)))
