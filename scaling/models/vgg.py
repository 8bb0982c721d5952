"""VGG (configurations A, B, D, E: depths 11, 13, 16, 19): config knobs, NNX module, analytic counts.

Follows Simonyan & Zisserman 2015 ("Very Deep Convolutional Networks") as torchvision builds it:
3x3 convs with bias and ReLU in five stages of 64-128-256-512-512 channels, each closed by a 2x2/2
max pool, a 7x7 average pool, fully-connected 4096-4096 with dropout, and no normalisation unless
`batch_norm` (after every conv, as torchvision's vgg*_bn). `width` is the first stage's channels
(64) and scales every layer, the hidden layers included. Departures: dropout acts on the inputs of
the two hidden layers (torchvision: on their outputs); max pools are in ceil mode and the average
pool goes to min(7, side), so tiny images still build (both are exact at 224x224).
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
    batch_norm,
    ceil_max_pool,
    ceil_pool_size,
    dense_stack,
    flatten,
    scaled,
)

DEFAULTS: dict[str, Any] = {"width": 64, "depth": 16, "batch_norm": False, "dropout": 0.5}
KINDS: dict[str, Any] = {"width": "int", "depth": "int", "batch_norm": "bool", "dropout": "fraction"}

_CONVS_PER_STAGE = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_STAGE_CHANNELS = (64, 128, 256, 512, 512)
_HIDDEN = 4096
_POOLED = 7
VARIANTS: dict[str, dict[str, Any]] = {
    f"vgg{depth}{'-bn' if norm else ''}": {"depth": depth, "batch_norm": norm}
    for depth in _CONVS_PER_STAGE for norm in (False, True)
}
PARTITION_RULES: PartitionRules = ()  # no tensor parallelism


def check(cfg: Mapping[str, Any], image_shape: tuple[int, int, int]) -> None:
    """The depth must be one of the paper's configurations."""
    if cfg["depth"] not in _CONVS_PER_STAGE:
        raise ConfigError(
            f"model.depth={cfg['depth']} is not a VGG configuration; use one of "
            f"{', '.join(map(str, _CONVS_PER_STAGE))} (configurations A, B, D, E)"
        )


def describe(cfg: Mapping[str, Any]) -> str:
    """One-line summary, e.g. 'vgg-16 width 64 dropout 0.5' ('vgg-16-bn ...' with batch norm)."""
    return f"vgg-{cfg['depth']}{'-bn' if cfg['batch_norm'] else ''} width {cfg['width']} dropout {cfg['dropout']}"


def _convs(width: int, depth: int) -> list[tuple[int, bool]]:
    """(output channels, max pool after) of every conv."""
    return [
        (scaled(channels, width), index == count - 1)
        for channels, count in zip(_STAGE_CHANNELS, _CONVS_PER_STAGE[depth]) for index in range(count)
    ]


def _classifier_sizes(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> list[int]:
    """Input and output sizes of the fully-connected layers."""
    sides = list(image_shape[:2])
    for _ in _STAGE_CHANNELS:
        sides = [ceil_pool_size(side, 2, 2) for side in sides]
    pooled = [min(_POOLED, side) for side in sides]
    hidden = scaled(_HIDDEN, cfg["width"])
    return [pooled[0] * pooled[1] * scaled(_STAGE_CHANNELS[-1], cfg["width"]), hidden, hidden, num_classes]


class VGG(nnx.Module):
    """3x3 conv stages with ReLU (and BatchNorm if asked), max pools, average pool, 3-layer classifier."""

    def __init__(self, *, convs: list[tuple[int, bool]], normalize: bool, dropout: float,
                 classifier_sizes: list[int], in_channels: int, rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        self.pools = tuple(pool for _, pool in convs)
        self.convs = nnx.List([])
        self.norms = nnx.List([]) if normalize else None
        features = in_channels
        for channels, _ in convs:
            self.convs.append(nnx.Conv(features, channels, (3, 3), padding=[(1, 1)] * 2, kernel_init=CONV_INIT,
                                       dtype=dtype, rngs=rngs))
            if normalize:
                self.norms.append(batch_norm(channels, rngs, dtype))
            features = channels
        self.classifier = dense_stack(classifier_sizes, dropout, rngs, dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        for index, (conv, pool) in enumerate(zip(self.convs, self.pools)):
            x = conv(x)
            x = nnx.relu(x if self.norms is None else self.norms[index](x))
            x = ceil_max_pool(x, 2, 2) if pool else x
        return self.classifier(flatten(adaptive_avg_pool(x, _POOLED))).astype(jnp.float32)


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> VGG:
    """Build a VGG from a validated, default-filled config."""
    return VGG(convs=_convs(cfg["width"], cfg["depth"]), normalize=cfg["batch_norm"], dropout=cfg["dropout"],
               classifier_sizes=_classifier_sizes(cfg, image_shape, num_classes), in_channels=image_shape[2],
               rngs=rngs, dtype=dtype)


def count(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters and forward multiply-adds."""
    tally, size, features = Tally(), image_shape[:2], image_shape[2]
    for channels, pool in _convs(cfg["width"], cfg["depth"]):
        size = tally.conv(size, features, channels, 3, bias=True)
        if cfg["batch_norm"]:
            tally.norm(channels)
        size = tuple(ceil_pool_size(side, 2, 2) for side in size) if pool else size
        features = channels
    tally.classifier(_classifier_sizes(cfg, image_shape, num_classes))
    return tally.counts()
