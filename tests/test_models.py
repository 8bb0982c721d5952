"""Model package: golden parameter counts, tiny forward passes, depth rules and config errors."""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from scaling.errors import ConfigError
from scaling.models import (
    MODEL_NAMES,
    build_model,
    count_params,
    default_model_config,
    describe_model,
    validate_model_config,
)

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
    assert MODEL_NAMES == ("resnet", "vit")
    for name in MODEL_NAMES:
        assert default_model_config(name).name == name


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("resnet", {"depth": 18}, 11_689_512),
        ("resnet", {"depth": 50, "block": "bottleneck"}, 25_557_032),
        ("vit", {"width": 768, "depth": 12, "num_heads": 12, "patch_size": 16}, 86_567_656),
        ("vit", {"width": 768, "depth": 12, "num_heads": 12, "patch_size": 32}, 88_224_232),
    ],
)
def test_golden_param_counts(name: str, overrides: dict[str, Any], expected: int) -> None:
    assert count_params(abstract(config(name, **overrides), (224, 224, 3), 1000)) == expected


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


def test_bfloat16_compute_keeps_float32_params_and_logits() -> None:
    cfg = config("vit", **TINY["vit-gap"])
    model = nnx.eval_shape(
        lambda: build_model(cfg, image_shape=TINY_SHAPE, num_classes=10, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    )
    assert {leaf.dtype for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype(jnp.float32)}
    logits = nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, *TINY_SHAPE), jnp.float32))
    assert logits.dtype == jnp.float32


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
    assert message({"name": "resnt"}) == "unknown model 'resnt' in model.name; choose one of: resnet, vit"
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
