"""Layers and size rules shared by the convolutional families: initialisers, BatchNorm, pooling; and the
type of every family's PARTITION_RULES."""

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx.nn import dtypes

CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # He et al. 2015, as torchvision
BASE_WIDTH = 64  # first-layer channels of AlexNet, VGG and ResNet: `width` scales every layer from it

# Not a config key: the knob that scaling.config.validation adds to a model spec whose BatchNorm statistics are
# per device (model.bn_stats="per_device"): into how many parts the mesh's data x fsdp devices split a batch.
BN_GROUPS = "bn_groups"

# Tensor-parallel rules: (regex searched in a parameter's path, the mesh axis of each of its dimensions).
PartitionRules = tuple[tuple[str, tuple[str | None, ...]], ...]


def scaled(channels: int, width: int) -> int:
    """Channels of a layer that has `channels` at the base width, in a network of first-layer `width`."""
    return max(1, round(channels * width / BASE_WIDTH))


def conv_size(side: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a convolution with symmetric `padding` (floor, as torch and XLA)."""
    return (side + 2 * padding - kernel) // stride + 1


def ceil_pool_size(side: int, window: int, stride: int) -> int:
    """Output side of a ceil-mode max pool; at least 1, so tiny images still pass (padding is -inf)."""
    return max(1, -(-(side - window) // stride) + 1)


def ceil_max_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    """Max pool of NHWC `x` in ceil mode: the last window may hang over the bottom/right edge."""
    pads = [(0, (ceil_pool_size(side, window, stride) - 1) * stride + window - side) for side in x.shape[1:3]]
    return nnx.max_pool(x, (window, window), strides=(stride, stride), padding=pads)


def _bins(side: int, out: int) -> np.ndarray:
    """[out, side] matrix averaging torch's adaptive-pool bins [floor(i*side/out), ceil((i+1)*side/out))."""
    matrix = np.zeros((out, side), np.float32)
    for i in range(out):
        start, end = i * side // out, -(-(i + 1) * side // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool(x: jax.Array, size: int) -> jax.Array:
    """Average NHWC `x` to min(size, side) per spatial side (torch's adaptive bins; identity at that size)."""
    sides = x.shape[1:3]
    outs = [min(size, side) for side in sides]
    if list(sides) == outs:
        return x
    rows, cols = (jnp.asarray(_bins(side, out), x.dtype) for side, out in zip(sides, outs))
    return jnp.einsum("oh,pw,bhwc->bopc", rows, cols, x)


class GroupedBatchNorm(nnx.BatchNorm):
    """BatchNorm whose training statistics are those of each of `groups` equal, consecutive parts of the batch.

    With the batch split over `groups` devices, each device normalises its own share: neither the forward nor the
    backward pass reduces across devices (only the update of the running statistics, which nothing waits for). The
    running mean and variance move towards the groups' average (as nnx.BatchNorm: biased variance, float32
    statistics); in eval mode it is nnx.BatchNorm.
    """

    def __init__(self, features: int, *, groups: int, **kwargs: Any):
        super().__init__(features, **kwargs)
        self.groups = groups

    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalise [B, ..., C] features, B a multiple of `groups`, by each group's statistics (training mode)."""
        if self.use_running_average:
            return super().__call__(x)
        x, scale, bias = self.promote_dtype((x, self.scale[...], self.bias[...]), dtype=self.dtype)
        parts = x.reshape(self.groups, x.shape[0] // self.groups, *x.shape[1:])
        parts = parts.astype(jnp.promote_types(x.dtype, jnp.float32))
        axes = tuple(range(1, parts.ndim - 1))
        mean = parts.mean(axes, keepdims=True)
        var = jnp.maximum(0.0, jnp.square(parts).mean(axes, keepdims=True) - jnp.square(mean))  # as flax's fast one
        self.mean[...] = self.momentum * self.mean[...] + (1 - self.momentum) * mean.mean(axis=(0, *axes))
        self.var[...] = self.momentum * self.var[...] + (1 - self.momentum) * var.mean(axis=(0, *axes))
        y = (parts - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias
        return y.reshape(x.shape).astype(dtypes.canonicalize_dtype(x, scale, bias, dtype=self.dtype))


def batch_norm(features: int, rngs: nnx.Rngs, dtype: jnp.dtype | None, zero_scale: bool = False,
               groups: int = 1) -> nnx.BatchNorm:
    """BatchNorm (momentum 0.9, eps 1e-5, as torch's 0.1 update); zero_scale starts a residual branch at zero;
    `groups` > 1: statistics of each of that many consecutive parts of the batch (`GroupedBatchNorm`)."""
    scale_init = nnx.initializers.zeros if zero_scale else nnx.initializers.ones
    options = {"momentum": 0.9, "epsilon": 1e-5, "scale_init": scale_init, "dtype": dtype, "rngs": rngs}
    return GroupedBatchNorm(features, groups=groups, **options) if groups > 1 else nnx.BatchNorm(features, **options)


def flatten(x: jax.Array) -> jax.Array:
    """[B, ...] -> [B, prod(...)]."""
    return x.reshape(x.shape[0], -1)


def dense_stack(sizes: Sequence[int], dropout: float, rngs: nnx.Rngs, dtype: jnp.dtype | None) -> nnx.Sequential:
    """The AlexNet/VGG classifier: (dropout, Linear, ReLU) per hidden layer, then the Linear head."""
    layers: list = []
    for index, (size_in, size_out) in enumerate(itertools.pairwise(sizes)):
        is_head = index == len(sizes) - 2
        if not is_head:
            layers += [nnx.Dropout(dropout, rngs=rngs)]
        layers += [nnx.Linear(size_in, size_out, dtype=dtype, rngs=rngs)]
        if not is_head:
            layers += [nnx.relu]
    return nnx.Sequential(*layers)
