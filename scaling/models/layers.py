"""Layers and size rules shared by the convolutional families: initialisers, BatchNorm, pooling; and the
type of every family's PARTITION_RULES."""

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # He et al. 2015, as torchvision
BASE_WIDTH = 64  # first-layer channels of AlexNet, VGG and ResNet: `width` scales every layer from it

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


def batch_norm(features: int, rngs: nnx.Rngs, dtype: jnp.dtype | None, zero_scale: bool = False) -> nnx.BatchNorm:
    """BatchNorm (momentum 0.9, eps 1e-5, as torch's 0.1 update); zero_scale starts a residual branch at zero."""
    scale_init = nnx.initializers.zeros if zero_scale else nnx.initializers.ones
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, scale_init=scale_init, dtype=dtype, rngs=rngs)


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
