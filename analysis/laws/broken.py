"""Broken power law with one break (Caballero et al. 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws.base import Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    u = log_x[0]
    bend = p["c1"] * p["f1"] * jax.nn.softplus((u - jnp.log(p["d1"])) / p["f1"])
    return jnp.logaddexp(jnp.log(p["a"]), jnp.log(p["b"]) - p["c0"] * u - bend)


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {
        "a": p["a"] * y_scale, "b": p["b"] * y_scale * x_scales[0] ** p["c0"], "c0": p["c0"],
        "c1": p["c1"], "d1": p["d1"] * x_scales[0], "f1": p["f1"],
    }


BROKEN = Law(
    name="broken",
    formula="E = a + b·x^(-c0)·(1 + (x/d1)^(1/f1))^(-c1·f1)",
    source="broken neural scaling law with one break, Caballero et al. 2022, 'Broken neural scaling laws' "
    "(ICLR 2023), eq. 1 with n = 1",
    inputs=("x",),
    default_columns=("compute",),
    params=(
        Param("a", 0.0, math.inf, (0.01, 0.2, 0.5), "limit as x -> infinity", unit_free=False),
        Param("b", 0.0, math.inf, log_grid(-2.0, 0.5, 3), "scale of the first segment", unit_free=False),
        Param("c0", 0.0, 5.0, (0.05, 0.3, 1.0), "exponent before the break"),
        Param("c1", -3.0, 5.0, (-0.2, 0.3, 1.0), "change of exponent at the break"),
        Param("d1", 0.0, math.inf, log_grid(-3.0, 3.0, 4), "where the break is", unit_free=False),
        Param("f1", 0.0, 10.0, (0.2, 1.0), "sharpness of the break (small: sharp)"),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
)
