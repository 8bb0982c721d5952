"""AlexNet, the one-tower variant: config knobs, NNX module, analytic counts.

Follows Krizhevsky 2014 ("One weird trick for parallelizing convolutional neural networks") as
torchvision builds it: convs 64-192-384-256-256 (11x11/4, 5x5, 3x3 x3) with 3x3/2 max pools after
the 1st, 2nd and 5th, a 6x6 average pool, fully-connected 4096-4096 with dropout on the inputs of
both, ReLU throughout, no normalisation. `width` is the first conv's channels (64) and scales every
layer, the hidden layers included. Departures: max pools are in ceil mode and the average pool
goes to min(6, side), so tiny images still build (both are exact at 224x224).
"""

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.errors import ConfigError
from scaling.models.counting import Counts, Tally
from scaling.models.layers import (
    CONV_INIT,
    PartitionRules,
    adaptive_avg_pool,
    ceil_max_pool,
    ceil_pool_size,
    conv_size,
    dense_stack,
    flatten,
    scaled,
)

DEFAULTS: dict[str, Any] = {"width": 64, "dropout": 0.5}
KINDS: dict[str, Any] = {"width": "int", "dropout": "fraction"}
VARIANTS: dict[str, dict[str, Any]] = {"alexnet": {}}
PARTITION_RULES: PartitionRules = ()  # no tensor parallelism

# (kernel, channels at width 64, stride, padding, max pool after) of each conv.
_CONVS = ((11, 64, 4, 2, True), (5, 192, 1, 2, True), (3, 384, 1, 1, False), (3, 256, 1, 1, False),
          (3, 256, 1, 1, True))
_HIDDEN = 4096
_POOLED = 6


def check(cfg: Mapping[str, Any], image_shape: tuple[int, int, int]) -> None:
    """The 11x11 stem (padding 2) needs image sides of at least 7; every later layer keeps a pixel."""
    kernel, _, _, padding, _ = _CONVS[0]
    if min(image_shape[:2]) < kernel - 2 * padding:
        raise ConfigError(
            f"image side {min(image_shape[:2])} is smaller than AlexNet's {kernel}x{kernel} stem allows "
            f"({kernel - 2 * padding} with its padding {padding}): use a larger data.resolution"
        )


def describe(cfg: Mapping[str, Any]) -> str:
    """One-line summary, e.g. 'alexnet width 64 dropout 0.5'."""
    return f"alexnet width {cfg['width']} dropout {cfg['dropout']}"


def _features_side(side: int) -> int:
    """Side of the conv features before the average pool."""
    for kernel, _, stride, padding, pool in _CONVS:
        side = conv_size(side, kernel, stride, padding)
        side = ceil_pool_size(side, 3, 2) if pool else side
    return side


def _classifier_sizes(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> list[int]:
    """Input and output sizes of the fully-connected layers."""
    pooled = [min(_POOLED, _features_side(side)) for side in image_shape[:2]]
    channels = scaled(_CONVS[-1][1], cfg["width"])
    hidden = scaled(_HIDDEN, cfg["width"])
    return [pooled[0] * pooled[1] * channels, hidden, hidden, num_classes]


class AlexNet(nnx.Module):
    """Five convs with ReLU and three max pools, average pool, 3-layer classifier with dropout."""

    def __init__(self, *, width: int, dropout: float, classifier_sizes: list[int], in_channels: int,
                 rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        self.convs = nnx.List([])
        features = in_channels
        for kernel, channels, stride, padding, _ in _CONVS:
            out = scaled(channels, width)
            self.convs.append(nnx.Conv(features, out, (kernel, kernel), (stride, stride),
                                       padding=[(padding, padding)] * 2, kernel_init=CONV_INIT, dtype=dtype,
                                       rngs=rngs))
            features = out
        self.classifier = dense_stack(classifier_sizes, dropout, rngs, dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        for conv, (*_, pool) in zip(self.convs, _CONVS):
            x = nnx.relu(conv(x))
            x = ceil_max_pool(x, 3, 2) if pool else x
        return self.classifier(flatten(adaptive_avg_pool(x, _POOLED))).astype(jnp.float32)


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> AlexNet:
    """Build AlexNet from a validated, default-filled config."""
    return AlexNet(width=cfg["width"], dropout=cfg["dropout"],
                   classifier_sizes=_classifier_sizes(cfg, image_shape, num_classes),
                   in_channels=image_shape[2], rngs=rngs, dtype=dtype)


def count(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters and forward multiply-adds."""
    tally, size, features = Tally(), image_shape[:2], image_shape[2]
    for kernel, channels, stride, padding, pool in _CONVS:
        out = scaled(channels, cfg["width"])
        size = tally.conv(size, features, out, kernel, stride, padding, bias=True)
        size = tuple(ceil_pool_size(side, 3, 2) for side in size) if pool else size
        features = out
    tally.classifier(_classifier_sizes(cfg, image_shape, num_classes))
    return tally.counts()
