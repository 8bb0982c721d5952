"""The M3 estimator of Alabdulmohsin et al. 2022: E = beta·(1/x + gamma)^(-c)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws.base import Derived, Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    return jnp.log(p["beta"]) - p["c"] * jnp.logaddexp(-log_x[0], jnp.log(p["gamma"]))


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    # E/s_y = beta'·(s_x/x + gamma')^(-c) = beta'·s_x^(-c)·(1/x + gamma'/s_x)^(-c)
    return {"beta": p["beta"] * y_scale * x_scales[0] ** (-p["c"]), "c": p["c"], "gamma": p["gamma"] / x_scales[0]}


M3 = Law(
    name="m3",
    formula="E = beta·(1/x + gamma)^(-c)",
    source="estimator M3 of Alabdulmohsin, Neyshabur and Zhai 2022, 'Revisiting neural scaling laws in language "
    "and vision' (NeurIPS), after Zhai et al. 2022; their code (google-research/revisiting_neural_scaling_laws/"
    "methods/m3.py) writes predict_loss = beta·(1/x + gamma)^c' with c' >= 0: here c = -c' <= 0, the sign of "
    "M1, M2 and M4's exponent; E tends to beta·gamma^(-c) as x -> infinity. Fitted by a Huber loss on log E",
    inputs=("x",),
    default_columns=("compute",),
    params=(
        Param("beta", 0.0, math.inf, log_grid(-2.0, 1.0, 4), "scale", unit_free=False),
        Param("c", -5.0, 0.0, (-1.0, -0.6, -0.3, -0.1), "exponent (negative)"),
        Param("gamma", 0.0, math.inf, log_grid(-9.0, 2.0, 4), "1/x at which E levels off", unit_free=False),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
    derived=(Derived("e_inf", "limit as x -> infinity: beta·gamma^(-c)",
                     lambda p: p["beta"] * p["gamma"] ** (-p["c"])),),
)
