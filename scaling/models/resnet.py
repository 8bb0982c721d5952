"""ResNet v1.5 with BatchNorm: config knobs, depth rules, the NNX module, analytic counts.

Follows He et al. 2016 ("Deep Residual Learning for Image Recognition") as torchvision builds it
("v1.5": a bottleneck strides on its 3x3 conv, not on its first 1x1). Departures: the last
BatchNorm of each residual branch starts at zero (Goyal et al. 2017), and a "small" stem (3x3
stride-1 conv, no max pool) serves tiny images. With `bn_stats="per_device"`, a further departure:
BatchNorm statistics over each device's share of the batch (Goyal et al. 2017 use 32 per GPU), not the global
batch, so no layer waits for a cross-device reduction; the share is train.batch_size / (train.microbatches x
the mesh's data x fsdp devices), set by the mesh (`BN_GROUPS`). The same module, with `preact=True`, builds the
pre-activation ResNet v2 of the BiT family (scaling/models/bit.py), whose GroupNorm has no batch statistics.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn import dtypes

from scaling.errors import ConfigError
from scaling.models.counting import Counts, Tally
from scaling.models.layers import BN_GROUPS, CONV_INIT, PartitionRules, batch_norm, conv_size

DEFAULTS: dict[str, Any] = {
    "width": 64,
    "depth": 18,
    "block": "basic",
    "stage_sizes": None,
    "num_stages": 4,
    "stem": "imagenet",
    "bn_stats": "global",  # BatchNorm statistics over the whole batch, or over each device's share (`per_device`)
}
KINDS: dict[str, Any] = {
    "width": "int",
    "depth": "int|None",
    "block": ("basic", "bottleneck"),
    "stage_sizes": "ints|None",
    "num_stages": "int|None",
    "stem": ("imagenet", "small"),
    "bn_stats": ("global", "per_device"),
}
VARIANTS: dict[str, dict[str, Any]] = {
    f"resnet{depth}": {"depth": depth, "block": "basic" if depth < 50 else "bottleneck", "stem": "imagenet"}
    for depth in (18, 34, 50, 101, 152)
}
PARTITION_RULES: PartitionRules = ()  # no tensor parallelism

_LAYERS_PER_BLOCK = {"basic": 2, "bottleneck": 3}
_STANDARD = {
    "basic": {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)},
    "bottleneck": {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)},
}
_GROUPS = 32  # GroupNorm groups of the pre-activation variant (fewer where channels are fewer)
_STANDARDIZE_EPS = 1e-10  # as BiT's reference StdConv2d

# (kernel size, output channels, stride) of each conv in a block with `features` base channels.
Layout = tuple[tuple[int, int, int], ...]


def _layout(block: str, features: int, stride: int) -> Layout:
    """Conv layers of a basic block, or of a v1.5 bottleneck (stride on the 3x3, x4 expansion)."""
    if block == "basic":
        return ((3, features, stride), (3, features, 1))
    return ((1, features, 1), (3, features, stride), (1, 4 * features, 1))


def _plan(width: int, block: str, sizes: Sequence[int]) -> list[tuple[int, Layout]]:
    """(input channels, layout) of every residual block: channels double and resolution halves per stage."""
    blocks, features = [], width
    for stage, size in enumerate(sizes):
        for index in range(size):
            layout = _layout(block, width * 2**stage, 2 if stage > 0 and index == 0 else 1)
            blocks.append((features, layout))
            features = layout[-1][1]
    return blocks


def _projects(in_features: int, layout: Layout) -> bool:
    """Whether a block's shortcut needs a 1x1 projection (it strides or changes the channels)."""
    return max(stride for _, _, stride in layout) != 1 or layout[-1][1] != in_features


def depth_of(block: str, stage_sizes: Sequence[int]) -> int:
    """Weight-layer depth (convs on the main path + stem + head) of a ResNet."""
    return 2 + _LAYERS_PER_BLOCK[block] * sum(stage_sizes)


def stage_sizes(cfg: Mapping[str, Any]) -> tuple[int, ...]:
    """Blocks per stage from model.stage_sizes, else from model.depth and model.num_stages."""
    block, depth, num_stages = cfg["block"], cfg["depth"], cfg["num_stages"]
    if cfg["stage_sizes"] is not None:
        sizes = tuple(cfg["stage_sizes"])
        implied = depth_of(block, sizes)
        if depth not in (None, implied):
            raise ConfigError(
                f"model.depth={depth} disagrees with model.stage_sizes={sizes}, which gives depth "
                f"{implied} for block {block!r}: set model.depth={implied} or model.depth=None"
            )
        if num_stages not in (None, len(sizes)):
            raise ConfigError(
                f"model.num_stages={num_stages} disagrees with model.stage_sizes={sizes}: set "
                f"model.num_stages={len(sizes)} or model.num_stages=None"
            )
        return sizes
    if depth is None or num_stages is None:
        raise ConfigError("model.depth and model.num_stages must be set when model.stage_sizes is None")
    if num_stages == 4 and depth in _STANDARD[block]:
        return _STANDARD[block][depth]
    per_block = _LAYERS_PER_BLOCK[block]
    blocks, remainder = divmod(depth - 2, per_block)
    if remainder or blocks < num_stages:
        smallest = 2 + per_block * num_stages
        larger = tuple(_STANDARD[block]) if num_stages == 4 else (smallest + per_block * num_stages,)
        examples = ", ".join(str(d) for d in (smallest, *larger))
        raise ConfigError(
            f"model.depth={depth} is not a valid ResNet depth for block {block!r} with {num_stages} "
            f"stages: use 2 + {per_block}*k with k >= {num_stages} blocks (e.g. {examples}) "
            "or set model.stage_sizes"
        )
    base, extra = divmod(blocks, num_stages)
    return tuple(base + (i < extra) for i in range(num_stages))


def check(cfg: Mapping[str, Any], image_shape: tuple[int, int, int]) -> None:
    """Cross-field checks: depth, num_stages and stage_sizes must describe one network."""
    stage_sizes(cfg)


def describe(cfg: Mapping[str, Any], prefix: str = "resnet") -> str:
    """One-line summary, e.g. 'resnet-18 basic width 64 stages (2,2,2,2) stem imagenet' (then 'bn per_device'
    where BatchNorm statistics are per device)."""
    sizes = stage_sizes(cfg)
    return (
        f"{prefix}-{depth_of(cfg['block'], sizes)} {cfg['block']} width {cfg['width']} "
        f"stages ({','.join(map(str, sizes))}) stem {cfg['stem']}"
        + (" bn per_device" if cfg.get("bn_stats") == "per_device" else "")
    )


def _standardized(arrays: tuple, dtype: jnp.dtype | None = None, inexact: bool = True) -> tuple:
    """nnx.Conv's promote_dtype hook that first standardises the kernel per output channel (Qiao et al. 2019)."""
    inputs, kernel, bias = arrays
    mean = kernel.mean(axis=(0, 1, 2), keepdims=True)
    variance = kernel.var(axis=(0, 1, 2), keepdims=True)
    kernel = (kernel - mean) * jax.lax.rsqrt(variance + _STANDARDIZE_EPS)
    return dtypes.promote_dtype((inputs, kernel, bias), dtype=dtype, inexact=inexact)


def _conv(in_features: int, out_features: int, kernel: int, stride: int, preact: bool, rngs: nnx.Rngs,
          dtype: jnp.dtype | None) -> nnx.Conv:
    """Bias-free square conv with torch-style padding kernel // 2; weight-standardised when `preact`."""
    return nnx.Conv(in_features, out_features, (kernel, kernel), (stride, stride),
                    padding=[(kernel // 2, kernel // 2)] * 2, use_bias=False, kernel_init=CONV_INIT,
                    promote_dtype=_standardized if preact else dtypes.promote_dtype, dtype=dtype, rngs=rngs)


def _norm(features: int, preact: bool, rngs: nnx.Rngs, dtype: jnp.dtype | None,
          zero_scale: bool = False, bn_groups: int = 1) -> nnx.Module:
    """GroupNorm (32 groups or fewer, eps 1e-5) when `preact`, else BatchNorm (zero_scale: starting at zero) with
    statistics over each of `bn_groups` parts of the batch."""
    if preact:
        return nnx.GroupNorm(features, num_groups=math.gcd(_GROUPS, features), epsilon=1e-5, dtype=dtype, rngs=rngs)
    return batch_norm(features, rngs, dtype, zero_scale, bn_groups)


class ResidualBlock(nnx.Module):
    """Convs with a norm and ReLU around each, plus an identity or 1x1 projection shortcut.

    Post-activation (v1.5): conv-norm-ReLU, the sum passing a final ReLU; the projection has a norm.
    Pre-activation (v2, `preact`): norm-ReLU-conv; the projection sees the pre-activated input.
    """

    def __init__(self, in_features: int, layout: Layout, *, preact: bool, rngs: nnx.Rngs,
                 dtype: jnp.dtype | None = None, bn_groups: int = 1):
        self.preact = preact
        self.convs = nnx.List([])
        self.norms = nnx.List([])
        features = in_features
        for i, (kernel, out_features, stride) in enumerate(layout):
            self.convs.append(_conv(features, out_features, kernel, stride, preact, rngs, dtype))
            normed = features if preact else out_features
            self.norms.append(_norm(normed, preact, rngs, dtype, i == len(layout) - 1, bn_groups))
            features = out_features
        projects = _projects(in_features, layout)
        self.shortcut = self._projection(in_features, features, layout, rngs, dtype, bn_groups) if projects else None

    def _projection(self, in_features: int, features: int, layout: Layout, rngs: nnx.Rngs,
                    dtype: jnp.dtype | None, bn_groups: int) -> nnx.Module:
        """The 1x1 strided shortcut conv; followed by a norm in the post-activation block."""
        conv = _conv(in_features, features, 1, max(s for _, _, s in layout), self.preact, rngs, dtype)
        return conv if self.preact else nnx.Sequential(conv, _norm(features, False, rngs, dtype, bn_groups=bn_groups))

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block to NHWC features."""
        if self.preact:
            y = nnx.relu(self.norms[0](x))
            shortcut = x if self.shortcut is None else self.shortcut(y)
            for i, conv in enumerate(self.convs):
                y = conv(y if i == 0 else nnx.relu(self.norms[i](y)))
            return y + shortcut
        y = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            y = norm(conv(y))
            if i < len(self.convs) - 1:
                y = nnx.relu(y)
        return nnx.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nnx.Module):
    """Stem, stages doubling channels and halving resolution, GAP + Linear head.

    v1.5: stem conv-BN-ReLU. v2 (`preact`): a bare stem conv, and GroupNorm-ReLU before the pooling.
    `bn_groups` > 1: each BatchNorm takes its statistics over that many consecutive parts of the batch.
    """

    def __init__(self, *, width: int, block: str, stage_sizes: Sequence[int], stem: str,
                 in_channels: int, num_classes: int, rngs: nnx.Rngs, dtype: jnp.dtype | None = None,
                 preact: bool = False, bn_groups: int = 1):
        kernel, stride = (7, 2) if stem == "imagenet" else (3, 1)
        self.stem_conv = _conv(in_channels, width, kernel, stride, preact, rngs, dtype)
        self.stem_norm = None if preact else _norm(width, preact, rngs, dtype, bn_groups=bn_groups)
        self.stem_pool = stem == "imagenet"
        self.blocks = nnx.List([])
        features = width
        for in_features, layout in _plan(width, block, stage_sizes):
            self.blocks.append(ResidualBlock(in_features, layout, preact=preact, rngs=rngs, dtype=dtype,
                                             bn_groups=bn_groups))
            features = layout[-1][1]
        self.head_norm = _norm(features, preact, rngs, dtype) if preact else None
        self.head = nnx.Linear(features, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        x = self.stem_conv(x)
        if self.stem_norm is not None:
            x = nnx.relu(self.stem_norm(x))
        if self.stem_pool:
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for block in self.blocks:
            x = block(x)
        if self.head_norm is not None:
            x = nnx.relu(self.head_norm(x))
        return self.head(x.mean(axis=(1, 2))).astype(jnp.float32)


def _bn_groups(cfg: Mapping[str, Any]) -> int:
    """Parts of the batch that take their own BatchNorm statistics: 1 (global), or the mesh's batch shards."""
    if cfg["bn_stats"] == "global":
        return 1
    if BN_GROUPS not in cfg:
        raise ConfigError("model.bn_stats='per_device' needs the mesh's batch shards: build the model from the spec "
                          "that scaling.config.validation.validate_compute returns")
    return cfg[BN_GROUPS]


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None, preact: bool = False) -> ResNet:
    """Build a ResNet from a validated, default-filled config (with `bn_stats="per_device"`, one that validation
    gave the mesh's batch shards as `BN_GROUPS`)."""
    return ResNet(width=cfg["width"], block=cfg["block"], stage_sizes=stage_sizes(cfg), stem=cfg["stem"],
                  in_channels=image_shape[2], num_classes=num_classes, rngs=rngs, dtype=dtype, preact=preact,
                  bn_groups=1 if preact else _bn_groups(cfg))


def count(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int,
          preact: bool = False) -> Counts:
    """Analytic parameters and forward multiply-adds of the network `build` makes."""
    tally, width = Tally(), cfg["width"]
    kernel, stride = (7, 2) if cfg["stem"] == "imagenet" else (3, 1)
    size = tally.conv(image_shape[:2], image_shape[2], width, kernel, stride)
    if not preact:
        tally.norm(width)
    if cfg["stem"] == "imagenet":
        size = (conv_size(size[0], 3, 2, 1), conv_size(size[1], 3, 2, 1))
    features = width
    for in_features, layout in _plan(width, cfg["block"], stage_sizes(cfg)):
        block_input = size
        for kernel, out_features, stride in layout:
            tally.norm(features if preact else out_features)
            size = tally.conv(size, features, out_features, kernel, stride)
            features = out_features
        if _projects(in_features, layout):
            tally.conv(block_input, in_features, features, 1, max(s for _, _, s in layout))
            if not preact:
                tally.norm(features)
    if preact:
        tally.norm(features)
    tally.head(features, num_classes)
    return tally.counts()
