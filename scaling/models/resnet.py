"""ResNet v1.5 with BatchNorm: config knobs, depth rules and the NNX module."""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "width": 64,
    "depth": 18,
    "block": "basic",
    "stage_sizes": None,
    "num_stages": 4,
    "stem": "imagenet",
}
KINDS: dict[str, Any] = {
    "width": "int",
    "depth": "int|None",
    "block": ("basic", "bottleneck"),
    "stage_sizes": "ints|None",
    "num_stages": "int|None",
    "stem": ("imagenet", "small"),
}

_LAYERS_PER_BLOCK = {"basic": 2, "bottleneck": 3}
_STANDARD = {
    "basic": {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)},
    "bottleneck": {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)},
}
_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")

# (kernel size, output channels, stride) of each conv in a block with `features` base channels.
Layout = tuple[tuple[int, int, int], ...]


def _layout(block: str, features: int, stride: int) -> Layout:
    """Conv layers of a basic block, or of a v1.5 bottleneck (stride on the 3x3, x4 expansion)."""
    if block == "basic":
        return ((3, features, stride), (3, features, 1))
    return ((1, features, 1), (3, features, stride), (1, 4 * features, 1))


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


def describe(cfg: Mapping[str, Any]) -> str:
    """One-line summary, e.g. 'resnet-18 basic width 64 stages (2,2,2,2) stem imagenet'."""
    sizes = stage_sizes(cfg)
    return (
        f"resnet-{depth_of(cfg['block'], sizes)} {cfg['block']} width {cfg['width']} "
        f"stages ({','.join(map(str, sizes))}) stem {cfg['stem']}"
    )


def _conv(in_features: int, out_features: int, kernel: int, stride: int, rngs: nnx.Rngs,
          dtype: jnp.dtype | None) -> nnx.Conv:
    """Bias-free square conv with torch-style symmetric padding kernel // 2."""
    return nnx.Conv(in_features, out_features, (kernel, kernel), (stride, stride),
                    padding=[(kernel // 2, kernel // 2)] * 2, use_bias=False,
                    kernel_init=_CONV_INIT, dtype=dtype, rngs=rngs)


def _norm(features: int, rngs: nnx.Rngs, dtype: jnp.dtype | None, zero_scale: bool = False) -> nnx.BatchNorm:
    """BatchNorm (momentum 0.9, eps 1e-5); zero_scale starts a residual branch at zero."""
    scale_init = nnx.initializers.zeros if zero_scale else nnx.initializers.ones
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, scale_init=scale_init,
                         dtype=dtype, rngs=rngs)


class ResidualBlock(nnx.Module):
    """Conv-BN layers with ReLU between them, plus an identity or 1x1 projection shortcut."""

    def __init__(self, in_features: int, layout: Layout, *, rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        self.convs = nnx.List([])
        self.norms = nnx.List([])
        features = in_features
        for i, (kernel, out_features, stride) in enumerate(layout):
            self.convs.append(_conv(features, out_features, kernel, stride, rngs, dtype))
            self.norms.append(_norm(out_features, rngs, dtype, zero_scale=i == len(layout) - 1))
            features = out_features
        stride = max(s for _, _, s in layout)
        self.shortcut = (
            nnx.Sequential(_conv(in_features, features, 1, stride, rngs, dtype), _norm(features, rngs, dtype))
            if stride != 1 or features != in_features else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block to NHWC features."""
        y = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            y = norm(conv(y))
            if i < len(self.convs) - 1:
                y = nnx.relu(y)
        return nnx.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nnx.Module):
    """ResNet v1.5: stem, stages doubling channels and halving resolution, GAP + Linear head."""

    def __init__(self, *, width: int, block: str, stage_sizes: Sequence[int], stem: str,
                 in_channels: int, num_classes: int, rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        kernel, stride = (7, 2) if stem == "imagenet" else (3, 1)
        self.stem_conv = _conv(in_channels, width, kernel, stride, rngs, dtype)
        self.stem_norm = _norm(width, rngs, dtype)
        self.stem_pool = stem == "imagenet"
        self.blocks = nnx.List([])
        features = width
        for stage, size in enumerate(stage_sizes):
            for index in range(size):
                layout = _layout(block, width * 2**stage, 2 if stage > 0 and index == 0 else 1)
                self.blocks.append(ResidualBlock(features, layout, rngs=rngs, dtype=dtype))
                features = layout[-1][1]
        self.head = nnx.Linear(features, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        x = nnx.relu(self.stem_norm(self.stem_conv(x)))
        if self.stem_pool:
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(axis=(1, 2))).astype(jnp.float32)


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> ResNet:
    """Build a ResNet from a validated, default-filled config."""
    return ResNet(width=cfg["width"], block=cfg["block"], stage_sizes=stage_sizes(cfg), stem=cfg["stem"],
                  in_channels=image_shape[2], num_classes=num_classes, rngs=rngs, dtype=dtype)
