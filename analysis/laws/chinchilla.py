"""Joint law in model and data size L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from analysis.laws.base import Derived, Law, Param, Params, log_grid


def _log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    log_n, log_d = log_x
    terms = jnp.broadcast_arrays(
        jnp.log(p["E"]), jnp.log(p["A"]) - p["alpha"] * log_n, jnp.log(p["B"]) - p["beta"] * log_d
    )
    return logsumexp(jnp.stack(terms), axis=0)


def _to_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {
        "E": p["E"] * y_scale, "A": p["A"] * y_scale * x_scales[0] ** p["alpha"],
        "B": p["B"] * y_scale * x_scales[1] ** p["beta"], "alpha": p["alpha"], "beta": p["beta"],
    }


CHINCHILLA = Law(
    name="chinchilla",
    formula="L = E + A/N^alpha + B/D^beta",
    source="Hoffmann et al. 2022, 'Training compute-optimal large language models', eq. 2 and App. D "
    "(Huber loss on log predictions, L-BFGS from a grid of 4,500 starts)",
    inputs=("N", "D"),
    default_columns=("params", "examples_seen"),
    params=(
        Param("E", 0.0, math.inf, log_grid(-3.0, 0.0, 5), "irreducible error", unit_free=False),
        Param("A", 0.0, math.inf, log_grid(-4.0, 1.0, 6), "model-size term's scale", unit_free=False),
        Param("B", 0.0, math.inf, log_grid(-4.0, 1.0, 6), "data term's scale", unit_free=False),
        Param("alpha", 0.0, 5.0, (0.1, 0.5, 1.0, 1.5, 2.0), "model-size exponent"),
        Param("beta", 0.0, 5.0, (0.1, 0.5, 1.0, 1.5, 2.0), "data exponent"),
    ),
    log_predict=_log_predict,
    to_data_units=_to_data_units,
    derived=(
        Derived("a", "N_opt ∝ C^a with C ∝ N·D: a = beta/(alpha+beta)",
                lambda p: p["beta"] / (p["alpha"] + p["beta"])),
        Derived("b", "D_opt ∝ C^b with C ∝ N·D: b = alpha/(alpha+beta)",
                lambda p: p["alpha"] / (p["alpha"] + p["beta"])),
    ),
)
