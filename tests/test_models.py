"""Model package: golden parameter counts, tiny forward passes and training steps, depth rules, variants, errors."""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from jax.extend.core import Jaxpr, jaxprs_in_params

from scaling.errors import ConfigError
from scaling.models import (
    MODEL_NAMES,
    VARIANT_NAMES,
    build_model,
    count_params,
    default_model_config,
    describe_model,
    model_counts,
    validate_model_config,
    variant_config,
)
from scaling.program.sharding import global_batch, make_mesh
from scaling.program.steps import make_loss_fn, split_model

TINY_SHAPE = (8, 8, 1)
TINY = {
    "resnet": {"width": 4, "depth": 10, "stem": "small"},
    "vit-cls": {"width": 16, "depth": 2, "num_heads": 2, "patch_size": 2, "pool": "cls"},
    "vit-gap": {"width": 16, "depth": 2, "num_heads": 2, "patch_size": 2, "pool": "gap"},
}


def config(name: str, **overrides: Any) -> ml_collections.ConfigDict:
    """Default config of family `name` with `overrides` applied."""
    cfg = default_model_config(name)
    cfg.update(overrides)
    return cfg


def abstract(cfg: ml_collections.ConfigDict, image_shape: tuple[int, int, int], num_classes: int) -> nnx.Module:
    """Build `cfg` with shapes only (no weights allocated)."""
    return nnx.eval_shape(lambda: build_model(cfg, image_shape=image_shape, num_classes=num_classes, rngs=nnx.Rngs(0)))


@nnx.jit
def forward(model: nnx.Module, x: jax.Array) -> jax.Array:
    """Jitted model call (BatchNorm updates flow back to `model`)."""
    return model(x)


def test_model_names() -> None:
    assert MODEL_NAMES == ("resnet", "vit", "bit", "alexnet", "vgg", "convnext")
    for name in MODEL_NAMES:
        assert default_model_config(name).name == name


# torchvision's counts (timm's for ViT, class token and a 1000-way head) at 224x224x3, 1000 classes.
GOLDEN = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "vgg11": 132_863_336, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg16-bn": 138_365_992, "vit-b/16": 86_567_656, "vit-b/32": 88_224_232, "vit-l/16": 304_326_632,
    "alexnet": 61_100_840, "convnext-t": 28_589_128,
}


# nnx.eval_shape's cost grows with the square of the layer count (flax 0.12.8 probes each traced rng
# count's sharding, and jax walks the whole trace to explain why a tracer has none): these deepest
# variants are checked by the analytic count alone, which test_analytic_params_match_the_built_model
# ties to the built modules of every family.
SLOW_TO_TRACE = {"resnet101", "resnet152", "vit-l/16"}


@pytest.mark.parametrize("variant", list(GOLDEN))
def test_golden_param_counts(variant: str) -> None:
    cfg = variant_config(variant)
    assert model_counts(cfg, image_shape=(224, 224, 3), num_classes=1000).params == GOLDEN[variant]
    if variant not in SLOW_TO_TRACE:
        assert count_params(abstract(cfg, (224, 224, 3), 1000)) == GOLDEN[variant]


def test_variants() -> None:
    assert {"resnet18", "resnet152", "bit-resnet50", "bit-resnet152x4", "vit-ti/16", "vit-h/14", "vit-s/8", "alexnet",
            "vgg11", "vgg19-bn", "convnext-t", "convnext-l"} <= set(VARIANT_NAMES)
    assert variant_config("ViT-L/16").to_dict() == {
        "name": "vit", "width": 1024, "depth": 24, "num_heads": 16, "mlp_ratio": 4.0, "patch_size": 16, "pool": "cls",
        "attention": "xla", "fused_qkv": True, "scan_blocks": False, "remat": "off",
    }
    assert describe_model(variant_config("bit-resnet50x3")) == (
        "bit-resnet-50 bottleneck width 192 stages (3,4,6,3) stem imagenet"
    )
    with pytest.raises(ConfigError, match=r"unknown model variant 'resnet-50'; close matches: resnet50"):
        variant_config("resnet-50")


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("resnet", {"width": 5, "depth": 14, "block": "bottleneck"}),
        ("bit", {"width": 40, "depth": 10, "block": "basic"}),
        ("vit", {"width": 24, "depth": 2, "num_heads": 3, "patch_size": 4, "pool": "gap", "mlp_ratio": 2.5}),
        ("alexnet", {"width": 5}),
        ("vgg", {"width": 3, "depth": 13, "batch_norm": True}),
        ("convnext", {"width": 6, "stage_sizes": (1, 2), "depth": None, "patch_size": 2}),
    ],
)
def test_analytic_params_match_the_built_model(name: str, knobs: dict[str, Any]) -> None:
    cfg = config(name, **knobs)
    for image_shape in [(36, 44, 3), (12, 20, 1)]:
        expected = count_params(abstract(cfg, image_shape, 7))
        assert model_counts(cfg, image_shape=image_shape, num_classes=7).params == expected


# These programs run a few times on tiny arrays: XLA's lowest backend optimisation halves their compile time.
QUICK_COMPILE = {"xla_backend_optimization_level": 0}
# Tiny members of every family for 16x16x3 images; dropout kept low so 3 steps on one batch still learn.
TRAINABLE = {
    "resnet": {"width": 4, "depth": 6, "num_stages": 2, "stem": "small"},
    "bit": {"width": 4, "depth": 6, "num_stages": 2, "block": "basic", "stem": "small"},
    "vit": {"width": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "pool": "gap"},
    "alexnet": {"width": 4, "dropout": 0.1},
    "vgg": {"width": 4, "depth": 11, "dropout": 0.1},
    "convnext": {"width": 8, "depth": None, "stage_sizes": (1, 1), "patch_size": 2},
}


@pytest.mark.parametrize("name", list(TRAINABLE))
def test_every_family_trains_on_eight_devices(name: str) -> None:
    cfg = config(name, **TRAINABLE[name])

    def build() -> nnx.Module:  # an RBG key: cheaper to compile than threefry, as the trainer does
        return build_model(cfg, image_shape=(16, 16, 3), num_classes=10, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))

    train_graph = split_model(nnx.eval_shape(build))[0]
    params, rest = jax.jit(lambda: tuple(nnx.split(build(), nnx.Param, ...)[1:]), compiler_options=QUICK_COMPILE)()
    loss_fn = make_loss_fn(train_graph)
    mesh = make_mesh(ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1}))
    rng = np.random.default_rng(0)
    images, targets = global_batch(mesh, rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
                                   np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8)])
    assert len(images.sharding.device_set) == 8
    norm = {"mean": np.full(3, 0.5, np.float32), "std": np.full(3, 0.25, np.float32)}

    @functools.partial(jax.jit, compiler_options=QUICK_COMPILE)
    def sgd_step(params, rest):
        (loss, (_, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, images, targets, norm)
        return loss, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), rest

    losses = []
    for _ in range(4):
        loss, params, rest = sgd_step(params, rest)
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses


@pytest.fixture(scope="module", params=list(TINY))
def tiny(request: pytest.FixtureRequest) -> nnx.Module:
    """A tiny model of each kind on 8x8x1 images with 10 classes."""
    cfg = config(request.param.split("-")[0], **TINY[request.param])
    return build_model(cfg, image_shape=TINY_SHAPE, num_classes=10, rngs=nnx.Rngs(0))


def batch_stats(model: nnx.Module) -> list[np.ndarray]:
    """Snapshot of the model's BatchNorm running statistics."""
    return [np.array(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]


def test_tiny_forward_train_and_eval(tiny: nnx.Module) -> None:
    x = jax.random.normal(jax.random.key(1), (3, *TINY_SHAPE))
    tiny.train()
    stats_before = batch_stats(tiny)
    train_logits = forward(tiny, x)
    stats_after = batch_stats(tiny)
    tiny.eval()
    eval_logits = forward(tiny, x)
    assert train_logits.shape == eval_logits.shape == (3, 10)
    assert train_logits.dtype == eval_logits.dtype == jnp.float32
    assert np.isfinite(np.asarray(train_logits)).all() and np.isfinite(np.asarray(eval_logits)).all()
    # Eval mode uses running statistics: an example's logits do not depend on the rest of the batch.
    np.testing.assert_allclose(forward(tiny, x[:1]), eval_logits[:1], rtol=1e-5, atol=1e-6)
    for after, final in zip(stats_after, batch_stats(tiny), strict=True):
        np.testing.assert_array_equal(after, final)
    if stats_before:
        changed = [not np.allclose(a, b) for a, b in zip(stats_before, stats_after, strict=True)]
        assert any(changed), "a train-mode call must update the BatchNorm running statistics"


def test_resnet_has_batch_stats_and_vit_has_none(tiny: nnx.Module) -> None:
    has_stats = bool(jax.tree.leaves(nnx.state(tiny, nnx.BatchStat)))
    assert has_stats == (type(tiny).__name__ == "ResNet")


def _resnet_depth(model: nnx.Module) -> int:
    """Weight layers on the main path: stem + block convs (shortcuts excluded) + head."""
    convs = [path for path, node in nnx.iter_graph(model) if isinstance(node, nnx.Conv)]
    return sum("shortcut" not in path for path in convs) + 1


@pytest.mark.parametrize(
    ("overrides", "stages"),
    [
        ({"depth": 10}, "(1,1,1,1)"),
        ({"depth": 14, "width": 3}, "(2,2,1,1)"),
        ({"depth": 18, "width": 5}, "(2,2,2,2)"),
        ({"depth": 26}, "(3,3,3,3)"),
        ({"depth": 34}, "(3,4,6,3)"),
        ({"depth": 26, "block": "bottleneck"}, "(2,2,2,2)"),
        ({"depth": 50, "block": "bottleneck", "width": 7}, "(3,4,6,3)"),
        ({"depth": 8, "num_stages": 3}, "(1,1,1)"),
        ({"depth": None, "num_stages": None, "stage_sizes": [1, 3]}, "(1,3)"),
        ({"depth": 12, "num_stages": 2, "stage_sizes": (2, 3)}, "(2,3)"),
    ],
)
def test_resnet_depths_build(overrides: dict[str, Any], stages: str) -> None:
    cfg = config("resnet", stem="small", **overrides)
    description = describe_model(cfg)
    assert stages in description
    model = abstract(cfg, (16, 16, 3), 10)
    assert description.startswith(f"resnet-{_resnet_depth(model)} ")
    logits = nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_vit_depths_build(depth: int, pool: str) -> None:
    cfg = config("vit", width=12, depth=depth, num_heads=3, patch_size=4, pool=pool, mlp_ratio=2.5)
    model = abstract(cfg, (8, 12, 3), 7)
    assert len(model.blocks) == depth
    assert model.pos_embed.shape == (1, 2 * 3 + (pool == "cls"), 12)
    logits = nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 8, 12, 3), jnp.float32))
    assert logits.shape == (2, 7)


def test_missing_keys_mean_defaults() -> None:
    assert describe_model({"name": "resnet"}) == describe_model(default_model_config("resnet"))
    assert describe_model({"name": "resnet"}) == "resnet-18 basic width 64 stages (2,2,2,2) stem imagenet"
    validate_model_config(ml_collections.ConfigDict({"name": "vit"}), image_shape=(32, 32, 3), num_classes=10)


def _matmul_input_dtypes(jaxpr: Jaxpr) -> set[jnp.dtype]:
    """Dtypes of the operands of every convolution and dot product in `jaxpr` and its sub-jaxprs."""
    dtypes = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
            dtypes |= {var.aval.dtype for var in eqn.invars}
        for sub in jaxprs_in_params(eqn.params):
            dtypes |= _matmul_input_dtypes(sub)
    return dtypes


@pytest.mark.parametrize("name", list(TRAINABLE))
def test_bfloat16_compute_keeps_float32_params_and_logits(name: str) -> None:
    cfg = config(name, **TRAINABLE[name])
    model = nnx.eval_shape(
        lambda: build_model(cfg, image_shape=(16, 16, 3), num_classes=10, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    )
    assert {leaf.dtype for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype(jnp.float32)}
    graph, state = nnx.split(model)
    images = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)
    traced = jax.make_jaxpr(lambda state, x: nnx.merge(graph, state)(x))(state, images)
    assert traced.out_avals[0].dtype == jnp.float32
    assert _matmul_input_dtypes(traced.jaxpr) == {jnp.dtype(jnp.bfloat16)}


BAD = [
    ("resnet", {"name": "resnt"}, "model.name"),
    ("resnet", {"widht": 64}, "widht"),
    ("resnet", {"width": 0}, "model.width"),
    ("resnet", {"width": 2.5}, "model.width"),
    ("resnet", {"depth": 11}, "model.depth"),
    ("resnet", {"depth": 0}, "model.depth"),
    ("resnet", {"depth": 14, "block": "bottleneck", "num_stages": 5}, "model.depth"),
    ("resnet", {"stage_sizes": (2, 2)}, "model.depth"),
    ("resnet", {"depth": None, "stage_sizes": (2, 2)}, "model.num_stages"),
    ("resnet", {"depth": None, "num_stages": None, "stage_sizes": (2, 0)}, "model.stage_sizes"),
    ("resnet", {"depth": None}, "model.depth"),
    ("resnet", {"num_stages": 0}, "model.num_stages"),
    ("resnet", {"block": "bottle"}, "model.block"),
    ("resnet", {"stem": "tiny"}, "model.stem"),
    ("vit", {"width": 100, "num_heads": 3}, "model.num_heads"),
    ("vit", {"num_heads": 0}, "model.num_heads"),
    ("vit", {"depth": -1}, "model.depth"),
    ("vit", {"patch_size": 5}, "model.patch_size"),
    ("vit", {"patch_size": 0}, "model.patch_size"),
    ("vit", {"mlp_ratio": 0.0}, "model.mlp_ratio"),
    ("vit", {"mlp_ratio": 0.001}, "model.mlp_ratio"),
    ("vit", {"pool": "max"}, "model.pool"),
    ("vit", {"block": "basic"}, "block"),
    ("bit", {"depth": 11}, "model.depth"),
    ("bit", {"stem": "tiny"}, "model.stem"),
    ("alexnet", {"width": 0}, "model.width"),
    ("alexnet", {"dropout": 1.0}, "model.dropout"),
    ("alexnet", {"depth": 8}, "depth"),
    ("vgg", {"depth": 12}, "model.depth"),
    ("vgg", {"batch_norm": 1}, "model.batch_norm"),
    ("vgg", {"dropout": -0.1}, "model.dropout"),
    ("convnext", {"depth": 3}, "model.depth"),
    ("convnext", {"depth": 5, "stage_sizes": (1, 1)}, "model.depth"),
    ("convnext", {"patch_size": 8}, "model.patch_size"),
]


@pytest.mark.parametrize(("name", "overrides", "field"), BAD)
def test_bad_config_raises_config_error(name: str, overrides: dict[str, Any], field: str) -> None:
    cfg = {**default_model_config(name).to_dict(), **overrides}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        validate_model_config(cfg, image_shape=(32, 32, 3), num_classes=10)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_model(cfg, image_shape=(32, 32, 3), num_classes=10, rngs=nnx.Rngs(0))


def test_error_messages_name_the_fix() -> None:
    def message(cfg: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as info:
            validate_model_config(cfg, image_shape=(8, 8, 3), num_classes=10)
        return str(info.value)

    assert message({"name": "resnet", "width": 0}) == "model.width must be a positive integer, got 0"
    assert message({"name": "resnt"}) == (
        "unknown model 'resnt' in model.name; choose one of: resnet, vit, bit, alexnet, vgg, convnext"
    )
    assert message({"name": "resnet", "widht": 1}).startswith(
        "model has unknown key 'widht' for family 'resnet'; valid keys: name, width, depth"
    )
    assert message({"name": "resnet", "depth": 11}) == (
        "model.depth=11 is not a valid ResNet depth for block 'basic' with 4 stages: "
        "use 2 + 2*k with k >= 4 blocks (e.g. 10, 18, 34) or set model.stage_sizes"
    )
    assert message({"name": "vit", "width": 100, "num_heads": 3}).startswith(
        "model.width=100 is not divisible by model.num_heads=3"
    )
    assert message({"name": "vit", "patch_size": 3}).startswith("image size 8 is not divisible by model.patch_size=3")


@pytest.mark.parametrize(
    ("image_shape", "num_classes", "field"),
    [((8, 8), 10, "image_shape"), ((8, 0, 3), 10, "image_shape"), ((8, 8, 3), 0, "num_classes")],
)
def test_bad_data_shape_raises_config_error(image_shape: Any, num_classes: int, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        validate_model_config({"name": "resnet"}, image_shape=image_shape, num_classes=num_classes)


@pytest.mark.parametrize(
    ("name", "side", "fix"),
    [("alexnet", 6, "data.resolution"), ("convnext", 16, "model.patch_size"), ("vit", 20, "model.patch_size")],
)
def test_images_too_small_for_the_family(name: str, side: int, fix: str) -> None:
    validate_model_config({"name": name}, image_shape=(32, 32, 3), num_classes=10)
    with pytest.raises(ConfigError, match=fix.replace(".", r"\.")):
        validate_model_config({"name": name}, image_shape=(side, side, 3), num_classes=10)
