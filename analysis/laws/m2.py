"""The M2 estimator of Alabdulmohsin et al. 2022: E = beta·x^c + e_inf."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws.base import Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    return jnp.logaddexp(jnp.log(p["beta"]) + p["c"] * log_x[0], jnp.log(p["e_inf"]))


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {"beta": p["beta"] * y_scale * x_scales[0] ** (-p["c"]), "c": p["c"], "e_inf": p["e_inf"] * y_scale}


M2 = Law(
    name="m2",
    formula="E = beta·x^c + e_inf",
    source="estimator M2 of Alabdulmohsin, Neyshabur and Zhai 2022, 'Revisiting neural scaling laws in language "
    "and vision' (NeurIPS), as their code writes it (google-research/revisiting_neural_scaling_laws/methods/m2.py: "
    "predict_loss = beta·x^c + err_inf, c < 0); fitted here like the other laws, by a Huber loss on log E",
    inputs=("x",),
    default_columns=("compute",),
    params=(
        Param("beta", 0.0, math.inf, log_grid(-2.0, 1.0, 4), "scale of the reducible part", unit_free=False),
        Param("c", -5.0, 0.0, (-1.0, -0.6, -0.3, -0.1), "exponent (negative)"),
        Param("e_inf", 0.0, math.inf, (0.001, 0.1, 0.3, 0.6), "irreducible error (x -> infinity)", unit_free=False),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
)
