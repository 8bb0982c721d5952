"""Joint error form of Rosenfeld et al. 2020: an envelope of two power laws through a complex-valued transition."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from analysis.laws.base import Derived, Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    log_m, log_n = log_x
    terms = jnp.broadcast_arrays(
        jnp.log(p["a"]) - p["alpha"] * log_n, jnp.log(p["b"]) - p["beta"] * log_m, jnp.log(p["c_inf"])
    )
    log_tilde = logsumexp(jnp.stack(terms), axis=0)
    # |z / (z - i)| = z / sqrt(z^2 + 1) for real z > 0, in log space
    return jnp.log(constants["random_guess"]) + log_tilde - 0.5 * jnp.logaddexp(2.0 * log_tilde, 0.0)


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {
        "a": p["a"] * x_scales[1] ** p["alpha"], "alpha": p["alpha"],
        "b": p["b"] * x_scales[0] ** p["beta"], "beta": p["beta"], "c_inf": p["c_inf"],
    }


ROSENFELD = Law(
    name="rosenfeld",
    formula="E = eps0·|e/(e - i·eta)|, e = a·D^(-alpha) + b·N^(-beta) + c_inf, eta = 1",
    source="Rosenfeld et al. 2020, 'A constructive prediction of the generalization error across scales' "
    "(ICLR), eq. 5: model size m = N, data size n = D, eps0 the random-guess error. The form depends on "
    "a, b, c_inf only through their ratios to eta, so eta is fixed at 1 to make the parameters identifiable",
    inputs=("N", "D"),
    default_columns=("params", "examples_seen"),
    params=(
        Param("a", 0.0, math.inf, log_grid(-3.0, 1.5, 4), "data term's scale (relative to eta)", unit_free=False),
        Param("alpha", 0.0, 5.0, (0.2, 0.5, 0.9, 1.5), "data exponent"),
        Param("b", 0.0, math.inf, log_grid(-3.0, 1.5, 4), "model term's scale (relative to eta)", unit_free=False),
        Param("beta", 0.0, 5.0, (0.2, 0.5, 0.9, 1.5), "model-size exponent"),
        Param("c_inf", 0.0, math.inf, log_grid(-5.0, 0.0, 4), "irreducible term (relative to eta)"),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
    constants=("random_guess",),
    derived=(
        Derived("a_opt", "N_opt ∝ C^a_opt with C ∝ N·D: alpha/(alpha+beta)",
                lambda p: p["alpha"] / (p["alpha"] + p["beta"])),
        Derived("b_opt", "D_opt ∝ C^b_opt with C ∝ N·D: beta/(alpha+beta)",
                lambda p: p["beta"] / (p["alpha"] + p["beta"])),
    ),
)
