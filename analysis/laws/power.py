"""Pure power law E = a x^-b (Hestness et al. 2017; Kaplan et al. 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws.base import Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    return jnp.log(p["a"]) - p["b"] * log_x[0]


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {"a": p["a"] * y_scale * x_scales[0] ** p["b"], "b": p["b"]}


POWER = Law(
    name="power",
    formula="E = a·x^(-b)",
    source="pure power law (Hestness et al. 2017, 'Deep learning scaling is predictable, empirically'; "
    "Kaplan et al. 2020, 'Scaling laws for neural language models')",
    inputs=("x",),
    default_columns=("compute",),
    params=(
        Param("a", 0.0, math.inf, log_grid(-2.0, 1.0, 8), "scale: E at x = 1", unit_free=False),
        Param("b", 0.0, 5.0, (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2), "exponent"),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
)
