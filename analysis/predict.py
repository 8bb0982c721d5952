"""Evaluate a law with given parameters (in the data's units), in float64."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis.laws import Law


def predict(law: Law, params: Mapping[str, np.ndarray | float], x: Sequence[np.ndarray],
            constants: Mapping[str, float] | None = None) -> np.ndarray:
    """y predicted at inputs `x` (one array per input); parameter arrays broadcast against the inputs."""
    with jax.enable_x64(True):
        log_x = tuple(jnp.log(jnp.asarray(values, jnp.float64)) for values in x)
        values = {name: jnp.asarray(params[name], jnp.float64) for name in law.names}
        fixed = {name: jnp.asarray((constants or {})[name], jnp.float64) for name in law.constants}
        return np.exp(np.asarray(_compiled(law)(values, log_x, fixed)))


@functools.cache
def _compiled(law: Law) -> Callable:
    return jax.jit(law.log_predict)
