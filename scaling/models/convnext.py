"""ConvNeXt: config knobs, stage rule, NNX module, analytic counts.

Follows Liu et al. 2022 ("A ConvNet for the 2020s"): a patchify stem (4x4/4 conv + LayerNorm), four
stages of width (w, 2w, 4w, 8w) joined by LayerNorm + 2x2/2 conv downsampling, blocks of depthwise
7x7 conv, LayerNorm, 4x MLP with GELU and layer scale (init 1e-6) on a residual path, then global
average pooling, LayerNorm and a Linear head. Variants T/S/B/L: widths 96/96/128/192, blocks
(3,3,9,3) or (3,3,27,3). Departures: no stochastic depth (drop path); GELU is jax's tanh
approximation; `patch_size` (the stem's kernel and stride) may be smaller for tiny images.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.errors import ConfigError
from scaling.models.counting import Counts, Tally
from scaling.models.layers import PartitionRules

DEFAULTS: dict[str, Any] = {"width": 96, "depth": 18, "stage_sizes": None, "patch_size": 4}
KINDS: dict[str, Any] = {"width": "int", "depth": "int|None", "stage_sizes": "ints|None", "patch_size": "int"}
VARIANTS: dict[str, dict[str, Any]] = {
    f"convnext-{size}": {"width": width, "depth": depth}
    for size, width, depth in (("t", 96, 18), ("s", 96, 36), ("b", 128, 36), ("l", 192, 36))
}
# Tensor parallelism (Megatron-style): the pointwise MLP's hidden units split over `tensor`; the depthwise
# convs, norms, layer scale and downsampling stay whole.
PARTITION_RULES: PartitionRules = (
    (r"stages/\d+/layers/\d+/mlp_in/kernel$", (None, "tensor")),  # [width, 4 width]
    (r"stages/\d+/layers/\d+/mlp_in/bias$", ("tensor",)),  # [4 width]
    (r"stages/\d+/layers/\d+/mlp_out/kernel$", ("tensor", None)),  # [4 width, width]
)

_INIT = nnx.initializers.truncated_normal(0.02)
_LAYER_SCALE = 1e-6
_EPS = 1e-6
_KERNEL = 7


def stage_sizes(cfg: Mapping[str, Any]) -> tuple[int, ...]:
    """Blocks per stage: model.stage_sizes, else (k, k, depth - 3k, k) with k = clip(depth // 6, 1, 3).

    The rule gives the paper's (3,3,9,3) at depth 18 and (3,3,27,3) at depth 36.
    """
    depth, sizes = cfg["depth"], cfg["stage_sizes"]
    if sizes is not None:
        sizes = tuple(sizes)
        if depth not in (None, sum(sizes)):
            raise ConfigError(
                f"model.depth={depth} disagrees with model.stage_sizes={sizes} ({sum(sizes)} blocks): "
                f"set model.depth={sum(sizes)} or model.depth=None"
            )
        return sizes
    if depth is None or depth < 4:
        raise ConfigError(f"model.depth={depth} must be at least 4 blocks (one per stage) or set model.stage_sizes")
    k = min(3, max(1, depth // 6))
    return (k, k, depth - 3 * k, k)


def check(cfg: Mapping[str, Any], image_shape: tuple[int, int, int]) -> None:
    """Cross-field checks: stage sizes resolve, and every stage keeps at least one pixel."""
    sizes = stage_sizes(cfg)
    smallest = cfg["patch_size"] * 2 ** (len(sizes) - 1)
    if min(image_shape[:2]) < smallest:
        raise ConfigError(
            f"image side {min(image_shape[:2])} is smaller than model.patch_size={cfg['patch_size']} times "
            f"{2 ** (len(sizes) - 1)} (the downsampling of {len(sizes)} stages): lower model.patch_size"
        )


def describe(cfg: Mapping[str, Any]) -> str:
    """One-line summary, e.g. 'convnext width 96 stages (3,3,9,3) patch 4'."""
    return f"convnext width {cfg['width']} stages ({','.join(map(str, stage_sizes(cfg)))}) patch {cfg['patch_size']}"


class Block(nnx.Module):
    """x + scale * MLP(LN(depthwise 7x7 conv(x))), the MLP 4x wide with GELU."""

    def __init__(self, features: int, *, rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        self.conv = nnx.Conv(features, features, (_KERNEL, _KERNEL), padding=[(_KERNEL // 2, _KERNEL // 2)] * 2,
                             feature_group_count=features, kernel_init=_INIT, dtype=dtype, rngs=rngs)
        self.norm = nnx.LayerNorm(features, epsilon=_EPS, dtype=dtype, rngs=rngs)
        self.mlp_in = nnx.Linear(features, 4 * features, kernel_init=_INIT, dtype=dtype, rngs=rngs)
        self.mlp_out = nnx.Linear(4 * features, features, kernel_init=_INIT, dtype=dtype, rngs=rngs)
        self.scale = nnx.Param(jnp.full((features,), _LAYER_SCALE))

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block to NHWC features."""
        y = self.mlp_out(nnx.gelu(self.mlp_in(self.norm(self.conv(x)))))
        return x + self.scale[...].astype(y.dtype) * y


class ConvNeXt(nnx.Module):
    """Patchify stem, stages of blocks joined by LayerNorm + strided conv, GAP + LayerNorm + Linear head."""

    def __init__(self, *, width: int, stage_sizes: Sequence[int], patch_size: int, in_channels: int,
                 num_classes: int, rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        self.downsamples = nnx.List([])  # the stem, then one per later stage: [conv, norm] or [norm, conv]
        self.stages = nnx.List([])
        features = in_channels
        for stage, size in enumerate(stage_sizes):
            out = width * 2**stage
            kernel = patch_size if stage == 0 else 2
            conv = nnx.Conv(features, out, (kernel, kernel), (kernel, kernel), padding="VALID", kernel_init=_INIT,
                            dtype=dtype, rngs=rngs)
            norm = nnx.LayerNorm(out if stage == 0 else features, epsilon=_EPS, dtype=dtype, rngs=rngs)
            self.downsamples.append(nnx.Sequential(conv, norm) if stage == 0 else nnx.Sequential(norm, conv))
            self.stages.append(nnx.Sequential(*[Block(out, rngs=rngs, dtype=dtype) for _ in range(size)]))
            features = out
        self.head_norm = nnx.LayerNorm(features, epsilon=_EPS, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(features, num_classes, kernel_init=_INIT, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        for downsample, stage in zip(self.downsamples, self.stages):
            x = stage(downsample(x))
        return self.head(self.head_norm(x.mean(axis=(1, 2)))).astype(jnp.float32)


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> ConvNeXt:
    """Build a ConvNeXt from a validated, default-filled config."""
    return ConvNeXt(width=cfg["width"], stage_sizes=stage_sizes(cfg), patch_size=cfg["patch_size"],
                    in_channels=image_shape[2], num_classes=num_classes, rngs=rngs, dtype=dtype)


def count(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters and forward multiply-adds."""
    tally, size, features = Tally(), image_shape[:2], image_shape[2]
    for stage, blocks in enumerate(stage_sizes(cfg)):
        out = cfg["width"] * 2**stage
        kernel = cfg["patch_size"] if stage == 0 else 2
        tally.norm(out if stage == 0 else features)
        size = tally.conv(size, features, out, kernel, kernel, padding=0, bias=True)
        for _ in range(blocks):
            tally.conv(size, out, out, _KERNEL, groups=out, bias=True)
            tally.norm(out)
            tally.dense(out, 4 * out, size[0] * size[1])
            tally.dense(4 * out, out, size[0] * size[1])
            tally.add_params(out)
        features = out
    tally.norm(features)
    tally.head(features, num_classes)
    return tally.counts()
