"""Vision Transformer (pre-LayerNorm, learned position embeddings): config knobs, NNX module, counts.

Follows Dosovitskiy et al. 2021 ("An Image is Worth 16x16 Words"), with the Ti and S sizes of
Touvron et al. 2021 (DeiT); variants are named like "vit-b/16" (size/patch). Departures: the head
is one zero-initialised Linear layer (the paper pre-trains with a hidden tanh layer); `pool="gap"`
replaces the class token by global average pooling (Zhai et al. 2022); no dropout.

Four knobs choose how the same model computes, not what: `attention` (XLA's softmax attention, or cuDNN's fused
flash attention on NVIDIA GPUs), `fused_qkv` (one projection to queries, keys and values instead of three),
`scan_blocks` (the blocks' parameters stacked over a leading layer axis and applied by one `jax.lax.scan`, so the
compiled program holds one block whatever the depth) and `remat` (what the backward pass recomputes of each block
instead of keeping it: a `jax.checkpoint` policy). From the same seed every setting starts from the same weights.
"""

import functools
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
    "attention": "xla",
    "fused_qkv": True,
    "scan_blocks": False,
    "remat": "off",
}
# What runs written before a knob existed did, where its default now does something else (read on their resume).
OLDER_RUNS: dict[str, Any] = {"fused_qkv": False}
KINDS: dict[str, Any] = {
    "width": "int",
    "depth": "int",
    "num_heads": "int",
    "mlp_ratio": "float",
    "patch_size": "int",
    "pool": ("cls", "gap"),
    "attention": ("xla", "cudnn"),
    "fused_qkv": "bool",
    "scan_blocks": "bool",
    "remat": ("off", "full", "dots_saveable", "dots_with_no_batch_dims_saveable"),
}

_SIZES = {  # name: (width, depth, heads), MLP 4x width
    "ti": (192, 12, 3), "s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "h": (1280, 32, 16),
}
VARIANTS: dict[str, dict[str, Any]] = {
    f"vit-{size}/{patch}": {"width": width, "depth": depth, "num_heads": heads, "mlp_ratio": 4.0,
                            "patch_size": patch, "pool": "cls"}
    for size, (width, depth, heads) in _SIZES.items() for patch in (32, 16, 14, 8)
}
# Tensor parallelism (Megatron-style): attention heads and MLP hidden units split over `tensor`. Each rule is written
# for one block's parameter ("blocks/<i>/..."); with scan_blocks the blocks' parameters are stacked ("blocks/...",
# a leading layer axis that is not split).
_BLOCK_RULES: PartitionRules = (
    (r"attn/qkv/kernel", (None, None, "tensor", None)),  # [width, 3, heads, head_dim]
    (r"attn/qkv/bias", (None, "tensor", None)),  # [3, heads, head_dim]
    (r"attn/(query|key|value)/kernel", (None, "tensor", None)),  # [width, heads, head_dim] (fused_qkv=False)
    (r"attn/(query|key|value)/bias", ("tensor", None)),  # [heads, head_dim]
    (r"attn/out/kernel", ("tensor", None, None)),  # [heads, head_dim, width]
    (r"mlp_in/kernel", (None, "tensor")),  # [width, mlp_dim]
    (r"mlp_in/bias", ("tensor",)),  # [mlp_dim]
    (r"mlp_out/kernel", ("tensor", None)),  # [mlp_dim, width]
)
PARTITION_RULES: PartitionRules = (
    tuple((rf"blocks/\d+/{path}$", axes) for path, axes in _BLOCK_RULES)
    + tuple((rf"blocks/{path}$", (None, *axes)) for path, axes in _BLOCK_RULES)
)

_DENSE_INIT = nnx.initializers.xavier_uniform()


def _attention(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
    """Softmax attention over [B, N, heads, head_dim] as XLA computes it. Both matmuls run in the inputs' dtype,
    forward and backward (logits kept in float32, as jax.nn.dot_product_attention does, would make the gradients
    of queries and keys float32 matmuls); the softmax is computed in float32."""
    logits = jnp.einsum("...qhd,...khd->...hqk", query / jnp.sqrt(query.shape[-1]).astype(query.dtype), key)
    weights = jax.nn.softmax(logits.astype(jnp.float32)).astype(value.dtype)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value)


def _cudnn_attention(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
    """cuDNN's fused flash attention; ConfigError, when the step is traced, where it cannot run: the platform is
    known only then (a sweep may be planned on a CPU login node for GPU jobs), and jax's own checks (cuDNN found,
    the GPU's generation, the head dimension) run then too."""
    fix = "use model.attention=xla"
    platform = jax.default_backend()
    if platform != "gpu":
        raise ConfigError(f"model.attention=cudnn needs NVIDIA GPUs (cuDNN flash attention), but this run's devices "
                          f"are {platform}; {fix}")
    if query.dtype not in (jnp.bfloat16, jnp.float16):
        raise ConfigError(f"model.attention=cudnn computes in bfloat16 or float16, but this run computes in "
                          f"{query.dtype}; set train.compute_dtype=bfloat16 (or auto), or {fix}")
    try:
        return jax.nn.dot_product_attention(query, key, value, implementation="cudnn")
    except (RuntimeError, NotImplementedError) as error:  # jax's refusals (no cuDNN, the GPU, the head size)
        raise ConfigError(f"model.attention=cudnn cannot run here ({error}); {fix}") from None


_ATTENTION = {"xla": _attention, "cudnn": _cudnn_attention}


def _fused_init(query_rng: jax.Array, key_rng: jax.Array) -> nnx.Initializer:
    """Initialiser of the fused query-key-value kernel ([width, 3 * width] as LinearGeneral initialises it), called
    with the value kernel's key: each third as the separate query, key and value kernels are from the same keys."""

    def init(value_rng: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        part = (shape[0], shape[1] // 3)
        return jnp.concatenate([_DENSE_INIT(rng, part, dtype) for rng in (query_rng, key_rng, value_rng)], axis=1)

    return init


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
    if cfg["attention"] == "cudnn" and (width // heads) % 8:
        raise ConfigError(
            f"model.attention=cudnn needs a head dimension (model.width / model.num_heads = {width // heads}) that "
            "is a multiple of 8; pick such a width and num_heads, or use model.attention=xla"
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


class SelfAttention(nnx.Module):
    """Multi-head self-attention with nnx.MultiHeadAttention's parameters (LinearGeneral `query`, `key`, `value`
    [width, heads, head_dim] and `out`), or with one fused `qkv` [width, 3, heads, head_dim] in their place.

    Both layouts draw their initial weights from the same keys (a separate layer draws one for its kernel, one for
    its bias), so that from the same `rngs` they hold the same weights. `attention` is "xla" or "cudnn".
    """

    def __init__(self, width: int, num_heads: int, *, fused_qkv: bool, attention: str, rngs: nnx.Rngs,
                 dtype: jnp.dtype | None = None):
        heads = (num_heads, width // num_heads)
        dense = functools.partial(nnx.LinearGeneral, kernel_init=_DENSE_INIT, dtype=dtype, rngs=rngs)
        if fused_qkv:  # the query's and key's kernel and bias keys drawn here, the value's by LinearGeneral
            query_rng, _, key_rng, _ = (rngs.params() for _ in range(4))
            self.qkv = dense(width, (3, *heads), kernel_init=_fused_init(query_rng, key_rng))
        else:
            self.query, self.key, self.value = (dense(width, heads) for _ in range(3))
        self.out = dense(heads, width, axis=(-2, -1))
        self.fused_qkv = fused_qkv
        self.attention = attention

    def __call__(self, x: jax.Array) -> jax.Array:
        """Attend over tokens [B, N, width]."""
        if self.fused_qkv:
            query, key, value = jnp.unstack(self.qkv(x), axis=-3)
        else:
            query, key, value = self.query(x), self.key(x), self.value(x)
        return self.out(_ATTENTION[self.attention](query, key, value))


class EncoderBlock(nnx.Module):
    """Pre-LayerNorm transformer block: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, width: int, num_heads: int, mlp_dim: int, *, fused_qkv: bool, attention: str,
                 rngs: nnx.Rngs, dtype: jnp.dtype | None = None):
        self.attn_norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.attn = SelfAttention(width, num_heads, fused_qkv=fused_qkv, attention=attention, dtype=dtype, rngs=rngs)
        self.mlp_norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.mlp_in = nnx.Linear(width, mlp_dim, kernel_init=_DENSE_INIT, dtype=dtype, rngs=rngs)
        self.mlp_out = nnx.Linear(mlp_dim, width, kernel_init=_DENSE_INIT, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block to tokens [B, N, width]."""
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp_out(nnx.gelu(self.mlp_in(self.mlp_norm(x))))


class ViT(nnx.Module):
    """Patch-embedding conv, optional class token, encoder blocks, final LayerNorm, Linear head.

    With `scan_blocks` the blocks are one EncoderBlock whose parameters have a leading layer axis (stacked from
    the blocks built one by one, so that the weights are those of the unrolled model from the same `rngs`), applied
    by `jax.lax.scan`; `remat` names the `jax.checkpoint` policy of each block ("off": keep every activation).
    """

    def __init__(self, *, width: int, depth: int, num_heads: int, mlp_dim: int, patch_size: int,
                 pool: str, image_shape: tuple[int, int, int], num_classes: int, rngs: nnx.Rngs,
                 dtype: jnp.dtype | None = None, attention: str = "xla", fused_qkv: bool = True,
                 scan_blocks: bool = False, remat: str = "off"):
        height, image_width, channels = image_shape
        self.patch_embed = nnx.Conv(channels, width, (patch_size, patch_size), (patch_size, patch_size),
                                    padding="VALID", dtype=dtype, rngs=rngs)
        self.cls_token = nnx.Param(jnp.zeros((1, 1, width))) if pool == "cls" else None
        num_tokens = (height // patch_size) * (image_width // patch_size) + (pool == "cls")
        self.pos_embed = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (1, num_tokens, width)))
        blocks = [EncoderBlock(width, num_heads, mlp_dim, fused_qkv=fused_qkv, attention=attention, rngs=rngs,
                               dtype=dtype) for _ in range(depth)]
        if scan_blocks:
            graph = nnx.graphdef(blocks[0])
            self.blocks = nnx.merge(graph, jax.tree.map(lambda *leaves: jnp.stack(leaves),
                                                        *(nnx.state(block) for block in blocks)))
        else:
            self.blocks = nnx.List(blocks)
        self.norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(width, num_classes, kernel_init=nnx.initializers.zeros, dtype=dtype, rngs=rngs)
        self.scan_blocks = scan_blocks
        self.remat = remat

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map NHWC images [B, H, W, C] to float32 logits [B, num_classes]."""
        x = self.patch_embed(x)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        if self.cls_token is not None:
            cls = jnp.broadcast_to(self.cls_token[...], (x.shape[0], 1, x.shape[-1]))
            x = jnp.concatenate([cls.astype(x.dtype), x], axis=1)
        x = x + self.pos_embed[...].astype(x.dtype)
        x = self._encode(x)
        x = self.norm(x)
        pooled = x[:, 0] if self.cls_token is not None else x.mean(axis=1)
        return self.head(pooled).astype(jnp.float32)

    def _encode(self, x: jax.Array) -> jax.Array:
        """The blocks applied to tokens [B, N, width], one after another; stacked blocks by `jax.lax.scan`, its
        body unrolled where `scan_blocks` is set off on them (so that XLA counts each block: flops.COUNTED_AS)."""
        stacked = not isinstance(self.blocks, nnx.List)
        if stacked:
            graph, layers = nnx.split(self.blocks)
        else:
            graph, layers = nnx.graphdef(self.blocks[0]), [nnx.state(block) for block in self.blocks]

        def step(x: jax.Array, layer: nnx.State) -> tuple[jax.Array, None]:
            return nnx.merge(graph, layer)(x), None

        if self.remat != "off":
            policy = None if self.remat == "full" else getattr(jax.checkpoint_policies, self.remat)
            step = jax.checkpoint(step, policy=policy, prevent_cse=not stacked)  # a scan needs no CSE barrier
        if stacked:
            return jax.lax.scan(step, x, layers, unroll=not self.scan_blocks)[0]
        for layer in layers:
            x = step(x, layer)[0]
        return x


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> ViT:
    """Build a ViT from a validated, default-filled config."""
    return ViT(width=cfg["width"], depth=cfg["depth"], num_heads=cfg["num_heads"], mlp_dim=_mlp_dim(cfg),
               patch_size=cfg["patch_size"], pool=cfg["pool"], image_shape=image_shape,
               num_classes=num_classes, rngs=rngs, dtype=dtype, attention=cfg["attention"],
               fused_qkv=cfg["fused_qkv"], scan_blocks=cfg["scan_blocks"], remat=cfg["remat"])


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
