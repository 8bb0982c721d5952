"""FLOP counting from XLA. Convention everywhere: 1 multiply-add = 2 FLOPs; training = forward + backward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.program.steps import make_loss_fn, split_model

# Static module attributes that change how a model computes, not what (see scaling/models/vit.py): XLA's cost
# analysis counts the body of a scan over blocks once, a rematerialised forward pass twice and a cuDNN kernel not at
# all, so a model is counted with its blocks unrolled, nothing recomputed and XLA's attention.
COUNTED_AS = {"scan_blocks": False, "remat": "off", "attention": "xla"}


def train_flops_per_example(
    abstract_model: nnx.Module, image_shape: tuple[int, int, int], num_classes: int, batch_size: int
) -> float:
    """XLA's count of forward + backward of the loss (global, unpartitioned), per example.

    `abstract_model` may hold shapes only (from `nnx.eval_shape`): nothing is allocated or compiled.
    The optimizer update is excluded: it costs per step, not per example. Counted on the model as COUNTED_AS sets
    it (the same arithmetic, each operation once in the program).
    """
    counted = nnx.with_attributes(abstract_model, raise_if_not_found=False, **COUNTED_AS)
    train_graph, _, params, rest = split_model(counted)
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
