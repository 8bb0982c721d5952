"""FLOP counting from XLA. Convention everywhere: 1 multiply-add = 2 FLOPs; training = forward + backward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.program.steps import make_loss_fn, split_model


def train_flops_per_example(
    abstract_model: nnx.Module, image_shape: tuple[int, int, int], num_classes: int, batch_size: int
) -> float:
    """XLA's count of forward + backward of the loss (global, unpartitioned), per example.

    `abstract_model` may hold shapes only (from `nnx.eval_shape`): nothing is allocated or compiled.
    The optimizer update is excluded: it costs per step, not per example.
    """
    train_graph, _, params, rest = split_model(abstract_model)
    loss_fn = make_loss_fn(train_graph)
    images = jax.ShapeDtypeStruct((batch_size, *image_shape), jnp.uint8)
    targets = jax.ShapeDtypeStruct((batch_size, num_classes), jnp.float32)
    channel = jax.ShapeDtypeStruct((image_shape[-1],), jnp.float32)
    norm = {"mean": channel, "std": channel}
    lowered = jax.jit(jax.value_and_grad(loss_fn, has_aux=True)).lower(params, rest, images, targets, norm)
    analysis = lowered.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float(analysis["flops"]) / batch_size
