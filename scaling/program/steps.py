"""The pure, jitted train step: NNX graph handling happens at trace time only.

Everything that varies between the runs of a sweep without changing shapes (normalisation
statistics of the subset, the learning rate of the step) is an argument, not a baked-in constant,
so runs that differ only in subset size or schedule share one compiled program (and one entry
of the persistent compilation cache).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling.data.augment import Augment, augment_images, mixup
from scaling.program import sharding

# {"params", "rest" (batch stats), "opt_state" (optax's)}: plain pytrees of arrays (`plain`), cheap to pass to a
# jitted function; the NNX objects are rebuilt inside the step, at trace time only.
TrainState = dict[str, Any]
Norm = dict[str, jax.Array]  # {"mean": [C], "std": [C]} in [0, 1] pixel units (scaling.data.pipeline.normalization)
LossFn = Callable[..., tuple[jax.Array, tuple[jax.Array, Any]]]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StepInputs:
    """What the train step takes besides the state, for every member of a pack (leading axis): uint8 images
    [M, B, H, W, C] and labels [M, B] split over the batch axes, normalisation statistics [M, C], the step's
    learning rate [M] and the augmentation seed (data seed, step) [M, 2]."""

    images: jax.Array
    labels: jax.Array
    norm: Norm
    lr: jax.Array
    rng: jax.Array

    @classmethod
    def place(cls, mesh: jax.sharding.Mesh, images: np.ndarray, labels: np.ndarray, norm: Norm, lr: np.ndarray,
              rng: np.ndarray) -> StepInputs:
        """This process's share of the batches as global arrays on `mesh`; the rest as given."""
        images, labels = sharding.global_batch(mesh, images, labels, packed=True)
        return cls(images, labels, norm, lr, rng)

    @classmethod
    def abstract(cls, mesh: jax.sharding.Mesh, members: int, batch_size: int,
                 image_shape: tuple[int, int, int]) -> StepInputs:
        """Shapes, dtypes and shardings only: what an ahead-of-time compile needs."""
        split = sharding.batch_sharded(mesh, packed=True)
        channel = jax.ShapeDtypeStruct((members, image_shape[-1]), jnp.float32)
        return cls(
            images=jax.ShapeDtypeStruct((members, batch_size, *image_shape), jnp.uint8, sharding=split),
            labels=jax.ShapeDtypeStruct((members, batch_size), jnp.int32, sharding=split),
            norm={"mean": channel, "std": channel},
            lr=jax.ShapeDtypeStruct((members,), jnp.float32),
            rng=jax.ShapeDtypeStruct((members, 2), jnp.int32),
        )


def preprocess(images: jax.Array, norm: Norm) -> jax.Array:
    """Images in 0..255 (uint8, or float after augmentation) to normalised float32, on the device."""
    return (images.astype(jnp.float32) / 255.0 - norm["mean"]) / norm["std"]


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.GraphDef, nnx.State, nnx.State]:
    """Graph definitions for train and eval mode, the parameters, and the other state (batch stats)."""
    model.train()
    train_graph, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    eval_graph = nnx.graphdef(model)
    return train_graph, eval_graph, params, rest


def plain(tree: Any) -> Any:
    """`tree` with every nnx.State in it as a nested dict of arrays (`nnx.to_pure_dict`): the same leaves in the
    same order, without the `nnx.Variable` wrappers that make flattening costly on every call."""
    return jax.tree.map(lambda node: nnx.to_pure_dict(node) if isinstance(node, nnx.State) else node, tree,
                        is_leaf=lambda node: isinstance(node, nnx.State))


def make_loss_fn(train_graph: nnx.GraphDef) -> LossFn:
    """(params, rest, images, targets [B, K], norm) -> (mean cross-entropy, (logits, updated batch stats))."""

    def loss_fn(params, rest, images, targets, norm):
        model = nnx.merge(train_graph, params, rest, copy=True)
        logits = model(preprocess(images, norm))
        loss = optax.softmax_cross_entropy(logits, targets).mean()
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        return loss, (logits, nnx.to_pure_dict(new_rest))

    return loss_fn


def make_train_step(
    loss_fn: LossFn, tx: optax.GradientTransformation, num_classes: int, label_smoothing: float, augment: Augment,
    microbatches: int = 1,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """A pure step of one run: (state, StepInputs) -> (new state, {loss, top1_error, grad_norm}).

    `inputs.rng` is (data seed, step): the augmentation of a batch (`augment`, on the device) is a function of it.
    `tx` works at unit learning rate; its update is scaled by `lr` (exact for adamw's decoupled
    decay and for sgd's momentum, whose updates are linear in the learning rate). With `microbatches`
    > 1 the gradient is the mean over equal micro-batches, computed one after another
    (`accumulated_gradients`), so memory holds one micro-batch's activations.
    """

    def train_step(state: TrainState, inputs: StepInputs):
        images, labels = inputs.images, inputs.labels
        targets = jax.nn.one_hot(labels, num_classes)
        if augment.active:
            crop_key, mix_key = jax.random.split(jax.random.fold_in(jax.random.key(inputs.rng[0]), inputs.rng[1]))
            images = augment_images(crop_key, images, augment)
            if augment.mixup_alpha:
                images, targets = mixup(mix_key, images, labels, num_classes, augment.mixup_alpha)
        targets = optax.smooth_labels(targets, label_smoothing)
        loss, logits, new_rest, grads = accumulated_gradients(
            loss_fn, microbatches, state["params"], state["rest"], images, targets, inputs.norm
        )
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], jax.tree.map(lambda u: inputs.lr * u, updates))
        metrics = {
            "loss": loss,
            "top1_error": jnp.mean(jnp.argmax(logits, -1) != labels),
            "grad_norm": optax.tree.norm(grads),
        }
        return {"params": params, "rest": new_rest, "opt_state": opt_state}, metrics

    return train_step


def accumulated_gradients(
    loss_fn: LossFn, microbatches: int, params: Any, rest: Any, images: jax.Array, targets: jax.Array,
    norm: Norm,
) -> tuple[jax.Array, jax.Array, Any, Any]:
    """Mean loss, logits [B, K], updated batch statistics and mean gradient over `microbatches` equal parts.

    Micro-batch j holds rows j, j + M, j + 2M, ... so that each one is spread over every device of the
    batch axes; batch statistics are updated by each micro-batch in turn, and gradients are summed in float32.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if microbatches == 1:
        (loss, (logits, rest)), grads = grad_fn(params, rest, images, targets, norm)
        return loss, logits, rest, grads

    def interleave(x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0] // microbatches, microbatches, *x.shape[1:]).swapaxes(0, 1)

    def accumulate(carry, micro):
        rest, loss_sum, grad_sum = carry
        (loss, (logits, rest)), grads = grad_fn(params, rest, *micro, norm)
        return (rest, loss_sum + loss, jax.tree.map(jnp.add, grad_sum, grads)), logits

    zeros = jax.tree.map(jnp.zeros_like, params)
    (rest, loss_sum, grad_sum), logits = jax.lax.scan(
        accumulate, (rest, jnp.float32(0), zeros), (interleave(images), interleave(targets))
    )
    logits = logits.swapaxes(0, 1).reshape(images.shape[0], -1)
    return loss_sum / microbatches, logits, rest, jax.tree.map(lambda g: g / microbatches, grad_sum)
