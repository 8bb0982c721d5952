"""Saturating power law E = a (x + d)^-b + c (Zhai et al. 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws.base import Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    power = jnp.log(p["a"]) - p["b"] * jnp.logaddexp(log_x[0], jnp.log(p["d"]))
    return jnp.logaddexp(power, jnp.log(p["c"]))


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {
        "a": p["a"] * y_scale * x_scales[0] ** p["b"], "b": p["b"],
        "c": p["c"] * y_scale, "d": p["d"] * x_scales[0],
    }


SATURATING = Law(
    name="saturating",
    formula="E = a·(x + d)^(-b) + c",
    source="saturating power law of Zhai et al. 2022, 'Scaling vision transformers' (CVPR), eq. 1",
    inputs=("x",),
    default_columns=("compute",),
    params=(
        Param("a", 0.0, math.inf, log_grid(-2.0, 1.0, 6), "scale of the reducible part", unit_free=False),
        Param("b", 0.0, 5.0, (0.05, 0.15, 0.3, 0.6, 1.2), "exponent"),
        Param("c", 0.0, math.inf, (0.01, 0.1, 0.3, 0.6), "irreducible error (x -> infinity)", unit_free=False),
        Param("d", 0.0, math.inf, log_grid(-9.0, 2.0, 4), "offset: where the power law starts", unit_free=False),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
)
