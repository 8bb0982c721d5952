"""Vision Transformer (pre-LayerNorm, learned position embeddings): config knobs, NNX module, counts.

Follows Dosovitskiy et al. 2021 ("An Image is Worth 16x16 Words"), with the Ti and S sizes of
Touvron et al. 2021 (DeiT); variants are named like "vit-b/16" (size/patch). Departures: the head
is one zero-initialised Linear layer (the paper pre-trains with a hidden tanh layer); `pool="gap"`
replaces the class token by global average pooling (Zhai et al. 2022); no dropout.
"""

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.errors import ConfigError
from scaling.models.counting import Counts, Tally
from scaling.models.layers import PartitionRules

DEFAULTS: dict[str, Any] = {
    "width": 192,
    "depth": 12,
    "num_heads": 3,
    "mlp_ratio": 4.0,
    "patch_size": 16,
    "pool": "cls",
}
KINDS: dict[str, Any] = {
    "width": "int",
    "depth": "int",
    "num_heads": "int",
    "mlp_ratio": "float",
    "patch_size": "int",
    "pool": ("cls", "gap"),
}

_SIZES = {  # name: (width, depth, heads), MLP 4x width
    "ti": (192, 12, 3), "s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "h": (1280, 32, 16),
}
VARIANTS: dict[str, dict[str, Any]] = {
    f"vit-{size}/{patch}": {"width": width, "depth": depth, "num_heads": heads, "mlp_ratio": 4.0,
                            "patch_size": patch, "pool": "cls"}
    for size, (width, depth, heads) in _SIZES.items() for patch in (32, 16, 14, 8)
}
# Tensor parallelism (Megatron-style): attention heads and MLP hidden units split over `tensor`.
PARTITION_RULES: PartitionRules = (
    (r"blocks/\d+/attn/(query|key|value)/kernel$", (None, "tensor", None)),  # [width, heads, head_dim]
    (r"blocks/\d+/attn/(query|key|value)/bias$", ("tensor", None)),  # [heads, head_dim]
    (r"blocks/\d+/attn/out/kernel$", ("tensor", None, None)),  # [heads, head_dim, width]
    (r"blocks/\d+/mlp_in/kernel$", (None, "tensor")),  # [width, mlp_dim]
    (r"blocks/\d+/mlp_in/bias$", ("tensor",)),  # [mlp_dim]
    (r"blocks/\d+/mlp_out/kernel$", ("tensor", None)),  # [mlp_dim, width]
)

_DENSE_INIT = nnx.initializers.xavier_uniform()


def _attention(query: jax.Array, key: jax.Array, value: jax.Array, **_: Any) -> jax.Array:
    """Softmax attention over [B, N, heads, head_dim] (no mask, no dropout: nnx.MultiHeadAttention's other
    arguments are unused). Both matmuls run in the inputs' dtype, forward and backward (logits kept in float32, as
    jax.nn.dot_product_attention does, would make the gradients of queries and keys float32 matmuls); the softmax
    is computed in float32."""
    logits = jnp.einsum("...qhd,...khd->...hqk", query / jnp.sqrt(query.shape[-1]).astype(query.dtype), key)
    weights = jax.nn.softmax(logits.astype(jnp.float32)).astype(value.dtype)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value)


def _mlp_dim(cfg: Mapping[str, Any]) -> int:
    """Hidden size of the MLP: int(width * mlp_ratio)."""
    return int(cfg["width"] * cfg["mlp_ratio"])


def check(cfg: Mapping[str, Any], image_shape: tuple[int, int, int]) -> None:
    """Cross-field checks: heads divide the width, patches tile the image, the MLP is non-empty."""
    width, heads, patch = cfg["width"], cfg["num_heads"], cfg["patch_size"]
    if width % heads:
        raise ConfigError(
            f"model.width={width} is not divisible by model.num_heads={heads}; "
            "pick a width that is a multiple of num_heads"
        )
    for side in image_shape[:2]:
        if side % patch:
            raise ConfigError(
                f"image size {side} is not divisible by model.patch_size={patch}; "
                "pick a patch size that divides the image height and width"
            )
    if _mlp_dim(cfg) < 1:
        raise ConfigError(
            f"model.mlp_ratio={cfg['mlp_ratio']} gives an empty MLP for model.width={width}; "
            "raise model.mlp_ratio"
        )


def describe(cfg: Mapping[str, Any]) -> str:
    """One-line summary, e.g. 'vit width 192 depth 12 heads 3 mlp 4.0 patch 16 pool cls'."""
    return (
        f"vit width {cfg['width']} depth {cfg['depth']} heads {cfg['num_heads']} "
        f"mlp {cfg['mlp_ratio']} patch {cfg['patch_size']} pool {cfg['pool']}"
    )


class EncoderBlock(nnx.Module):
    """Pre-LayerNorm transformer block: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, width: int, num_heads: int, mlp_dim: int, *, rngs: nnx.Rngs,
                 dtype: jnp.dtype | None = None):
        self.attn_norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads, width, kernel_init=_DENSE_INIT, decode=False,
                                           attention_fn=_attention, dtype=dtype, keep_rngs=False, rngs=rngs)
        self.mlp_norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.mlp_in = nnx.Linear(width, mlp_dim, kernel_init=_DENSE_INIT, dtype=dtype, rngs=rngs)
        self.mlp_out = nnx.Linear(mlp_dim, width, kernel_init=_DENSE_INIT, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block to tokens [B, N, width]."""
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp_out(nnx.gelu(self.mlp_in(self.mlp_norm(x))))


class ViT(nnx.Module):
    """Patch-embedding conv, optional class token, encoder blocks, final LayerNorm, Linear head."""

    def __init__(self, *, width: int, depth: int, num_heads: int, mlp_dim: int, patch_size: int,
                 pool: str, image_shape: tuple[int, int, int], num_classes: int, rngs: nnx.Rngs,
                 dtype: jnp.dtype | None = None):
        height, image_width, channels = image_shape
        self.patch_embed = nnx.Conv(channels, width, (patch_size, patch_size), (patch_size, patch_size),
                                    padding="VALID", dtype=dtype, rngs=rngs)
        self.cls_token = nnx.Param(jnp.zeros((1, 1, width))) if pool == "cls" else None
        num_tokens = (height // patch_size) * (image_width // patch_size) + (pool == "cls")
        self.pos_embed = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (1, num_tokens, width)))
        self.blocks = nnx.List(
            [EncoderBlock(width, num_heads, mlp_dim, rngs=rngs, dtype=dtype) for _ in range(depth)]
        )
        self.norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(width, num_classes, kernel_init=nnx.initializers.zeros, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        x = self.patch_embed(x)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        if self.cls_token is not None:
            cls = jnp.broadcast_to(self.cls_token[...], (x.shape[0], 1, x.shape[-1]))
            x = jnp.concatenate([cls.astype(x.dtype), x], axis=1)
        x = x + self.pos_embed[...].astype(x.dtype)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        pooled = x[:, 0] if self.cls_token is not None else x.mean(axis=1)
        return self.head(pooled).astype(jnp.float32)


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> ViT:
    """Build a ViT from a validated, default-filled config."""
    return ViT(width=cfg["width"], depth=cfg["depth"], num_heads=cfg["num_heads"], mlp_dim=_mlp_dim(cfg),
               patch_size=cfg["patch_size"], pool=cfg["pool"], image_shape=image_shape,
               num_classes=num_classes, rngs=rngs, dtype=dtype)


def count(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters and forward multiply-adds (attention's Q K^T and A V included)."""
    tally, width, mlp_dim = Tally(), cfg["width"], _mlp_dim(cfg)
    patch = cfg["patch_size"]
    size = tally.conv(image_shape[:2], image_shape[2], width, patch, patch, padding=0, bias=True)
    tokens = size[0] * size[1] + (cfg["pool"] == "cls")
    tally.add_params((cfg["pool"] == "cls") * width + tokens * width)
    for _ in range(cfg["depth"]):
        tally.norm(width)
        for _ in range(4):  # query, key, value, output projections
            tally.dense(width, width, tokens)
        tally.attention(tokens, width)
        tally.norm(width)
        tally.dense(width, mlp_dim, tokens)
        tally.dense(mlp_dim, width, tokens)
    tally.norm(width)
    tally.head(width, num_classes)
    return tally.counts()
