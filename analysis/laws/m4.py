"""The M4 estimator of Alabdulmohsin et al. 2022: (E - E_inf) / (eps0 - E)^alpha = beta·x^c, with eps0 the
random-guess error held fixed (`m4`) or fitted (`m4_learned`, as their code does by default)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws.base import Derived, Law, Param, Params, log_grid

NEWTON_STEPS = 8  # from the asymptotic start below, the residual reaches rounding level in about 8


def _residual(t: jax.Array, alpha: jax.Array, k: jax.Array) -> jax.Array:
    """log v - alpha log(1 - v) - k for v = sigmoid(t): increasing in t, zero at the solution."""
    return -jax.nn.softplus(-t) + alpha * jax.nn.softplus(t) - k


def _solve_logit(alpha: jax.Array, k: jax.Array) -> jax.Array:
    """t with _residual(t) = 0, by Newton's method; the gradient flows through the implicit function theorem."""
    alpha_fixed, k_fixed = jax.lax.stop_gradient(alpha), jax.lax.stop_gradient(k)
    t = jnp.clip(jnp.where(k_fixed < 0, k_fixed, k_fixed / jnp.maximum(alpha_fixed, 1e-3)), -60.0, 60.0)
    for _ in range(NEWTON_STEPS):
        slope = jax.nn.sigmoid(-t) + alpha_fixed * jax.nn.sigmoid(t)
        t = t - _residual(t, alpha_fixed, k_fixed) / slope
    t = jax.lax.stop_gradient(t)
    slope = jax.lax.stop_gradient(jax.nn.sigmoid(-t) + alpha_fixed * jax.nn.sigmoid(t))
    return t - _residual(t, alpha, k) / slope


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    # with w = E - E_inf = span·v: v / (1 - v)^alpha = beta x^c span^(alpha - 1)
    span = constants["random_guess"] - p["e_inf"]
    k = jnp.log(p["beta"]) + p["c"] * log_x[0] + (p["alpha"] - 1.0) * jnp.log(span)
    t = _solve_logit(p["alpha"], k)
    return jnp.logaddexp(jnp.log(p["e_inf"]), jnp.log(span) - jax.nn.softplus(-t))


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {
        "beta": p["beta"] * y_scale ** (1.0 - p["alpha"]) * x_scales[0] ** (-p["c"]), "c": p["c"],
        "alpha": p["alpha"], "e_inf": p["e_inf"] * y_scale,
    }


M4 = Law(
    name="m4",
    formula="(E - e_inf)/(eps0 - E)^alpha = beta·x^c",
    source="estimator M4 of Alabdulmohsin, Neyshabur and Zhai 2022, 'Revisiting neural scaling laws in language "
    "and vision' (NeurIPS), eq. 4; eps0 is the random-guess error, held fixed; E is found from x by solving the "
    "implicit equation, and fitted like the other laws on log E",
    inputs=("x",),
    default_columns=("compute",),
    params=(
        Param("beta", 0.0, math.inf, log_grid(-2.0, 1.0, 4), "scale", unit_free=False),
        Param("c", -5.0, 0.0, (-1.0, -0.6, -0.3, -0.1), "exponent (negative)"),
        Param("alpha", 0.0, 5.0, (0.1, 0.5, 1.0, 2.0), "how sharply E leaves eps0"),
        Param("e_inf", 0.0, math.inf, (0.001, 0.1, 0.3, 0.6), "irreducible error", unit_free=False),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
    constants=("random_guess",),
)


def _log_predict_learned(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    return _log_predict(p, log_x, {"random_guess": p["e_inf"] + p["span"]})


def _to_data_units_learned(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {**_to_data_units(p, x_scales, y_scale), "span": p["span"] * y_scale}


M4_LEARNED = dataclasses.replace(
    M4,
    name="m4_learned",
    formula="(E - e_inf)/(eps0 - E)^alpha = beta·x^c, eps0 = e_inf + span fitted",
    source="estimator M4 of Alabdulmohsin, Neyshabur and Zhai 2022 (NeurIPS), eq. 4, with the random-guess level "
    "eps0 learned as their code does by default (google-research/revisiting_neural_scaling_laws/methods/m4.py: "
    "update_err_0=True); eps0 is written e_inf + span so that it stays above e_inf",
    params=(*M4.params, Param("span", 0.0, math.inf, (0.5, 2.0, 8.0), "eps0 - e_inf", unit_free=False)),
    log_predict=_log_predict_learned,
    to_data_units=_to_data_units_learned,
    constants=(),
    derived=(Derived("eps0", "the fitted random-guess level: e_inf + span", lambda p: p["e_inf"] + p["span"]),),
)
