"""ViT's execution knobs change how it computes, not what: blocks scanned or unrolled, queries, keys and values
projected fused or apart, activations rematerialised or kept give the same loss and gradients for corresponding
weights, the same FLOPs count, and the same weights from the same seed; cuDNN attention stops with one error line
where it cannot run."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import tiny_args

from scaling.cli import main
from scaling.errors import ConfigError
from scaling.models import build_model, default_model_config, partition_rules, validate_model_config
from scaling.models.vit import SelfAttention
from scaling.program.flops import train_flops_per_example
from scaling.program.sharding import partition_spec, path_name
from scaling.program.steps import make_loss_fn, split_model

IMAGE_SHAPE = (8, 8, 3)
TINY = {"width": 16, "depth": 2, "num_heads": 2, "patch_size": 2}
REFERENCE = {"scan_blocks": False, "fused_qkv": False, "remat": "off"}  # one block after another, as before


def _model(seed: int = 0, **knobs) -> nnx.Module:
    cfg = default_model_config("vit")
    cfg.update(TINY, **knobs)
    return build_model(cfg, image_shape=IMAGE_SHAPE, num_classes=10, rngs=nnx.Rngs(seed))


def _params(model: nnx.Module) -> dict[str, np.ndarray]:
    """The parameters of `model` by path."""
    return {path_name(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))[0]}


def _in_layout(reference: dict[str, np.ndarray], path: str) -> np.ndarray:
    """The parameter (or gradient) at `path` of any layout from those of the REFERENCE model: stacked blocks
    'blocks/X' [depth, ...] from each 'blocks/<i>/X'; a fused 'attn/qkv' kernel [width, 3, heads, head_dim] (bias
    [3, heads, head_dim]) from the separate 'attn/query', 'attn/key' and 'attn/value'."""
    if re.match(r"blocks/\D", path):
        return np.stack([_in_layout(reference, path.replace("blocks/", f"blocks/{i}/", 1))
                         for i in range(TINY["depth"])])
    if "/attn/qkv/" in path:
        return np.stack([reference[path.replace("qkv", name)] for name in ("query", "key", "value")],
                        axis=1 if path.endswith("kernel") else 0)
    return reference[path]


def _loss_and_gradients(knobs: dict, weights: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray], str]:
    """The train loss of the model of `knobs` holding `weights` (from the REFERENCE's, by _in_layout) on a fixed
    batch, its gradients by path, and the text of its jaxpr."""
    train_graph, _, params, rest = split_model(nnx.eval_shape(lambda: _model(**{**REFERENCE, **knobs})))
    params = jax.tree_util.tree_map_with_path(lambda path, _: jnp.asarray(_in_layout(weights, path_name(path))),
                                              params)
    images = jax.random.randint(jax.random.key(1), (4, *IMAGE_SHAPE), 0, 256).astype(jnp.uint8)
    targets = jax.nn.one_hot(jnp.array([0, 3, 5, 9]), 10)
    norm = {"mean": jnp.full(3, 0.5), "std": jnp.full(3, 0.25)}
    traced = jax.jit(jax.value_and_grad(make_loss_fn(train_graph), has_aux=True)).trace(params, rest, images,
                                                                                          targets, norm)
    (loss, _), grads = traced.lower().compile()(params, rest, images, targets, norm)
    flat = {path_name(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]}
    return float(loss), flat, str(traced.jaxpr)


@pytest.fixture(scope="module")
def reference() -> tuple[dict[str, np.ndarray], float, dict[str, np.ndarray]]:
    """Any weights of the REFERENCE model (at init its zero head would leave the blocks without gradient), and its
    loss and gradients with them."""
    rng = np.random.default_rng(0)
    shapes = nnx.eval_shape(lambda: _model(**REFERENCE))
    weights = {path_name(path): rng.normal(0.0, 0.5, leaf.shape).astype(np.float32)
               for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.state(shapes, nnx.Param))[0]}
    loss, grads, jaxpr = _loss_and_gradients({}, weights)
    assert not re.search(r"\b(scan|remat\d*|checkpoint)\[", jaxpr)
    return weights, loss, grads


@pytest.mark.parametrize("knobs", [
    {"scan_blocks": True, "fused_qkv": False}, {"fused_qkv": True, "remat": "full"},
    {"scan_blocks": True, "fused_qkv": True, "remat": "dots_saveable"},
])
def test_same_loss_and_gradients_as_the_unrolled_model_with_corresponding_weights(knobs, reference) -> None:
    weights, reference_loss, reference_grads = reference
    loss, grads, jaxpr = _loss_and_gradients(knobs, weights)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    assert sum(grad.size for grad in grads.values()) == sum(grad.size for grad in reference_grads.values())
    for path, grad in grads.items():
        np.testing.assert_allclose(grad, _in_layout(reference_grads, path), rtol=1e-4, atol=1e-6, err_msg=path)
    # the knobs took effect: one scan over the blocks, rematerialised blocks
    assert (re.search(r"\bscan\[", jaxpr) is not None) == knobs.get("scan_blocks", False)
    assert (re.search(r"\b(remat\d*|checkpoint)\[", jaxpr) is not None) == ("remat" in knobs)


def test_stacked_fused_layout_starts_from_the_same_weights_from_the_same_seed() -> None:
    reference = _params(_model(**REFERENCE))
    for path, value in _params(_model(scan_blocks=True, fused_qkv=True)).items():
        np.testing.assert_array_equal(value, _in_layout(reference, path), err_msg=path)


def test_separate_projections_are_those_of_nnx_multi_head_attention() -> None:
    """fused_qkv=False keeps the parameters (names, shapes, initial values) of the ViT before fused projections."""
    ours = SelfAttention(16, 2, fused_qkv=False, attention="xla", rngs=nnx.Rngs(3))
    flax_mha = nnx.MultiHeadAttention(2, 16, kernel_init=nnx.initializers.xavier_uniform(), decode=False,
                                      keep_rngs=False, rngs=nnx.Rngs(3))
    ours_params, flax_params = _params(ours), _params(flax_mha)
    assert ours_params.keys() == flax_params.keys()
    for path, value in flax_params.items():
        np.testing.assert_array_equal(ours_params[path], value, err_msg=path)
    tokens = jax.random.normal(jax.random.key(0), (2, 5, 16))
    np.testing.assert_allclose(ours(tokens), flax_mha(tokens), rtol=1e-5, atol=1e-6)


def test_flops_per_example_are_the_unrolled_models_whatever_the_execution_knobs() -> None:
    def flops(**knobs) -> float:
        cfg = default_model_config("vit")
        cfg.update(TINY, **knobs)
        model = nnx.eval_shape(lambda: build_model(cfg, image_shape=IMAGE_SHAPE, num_classes=10, rngs=nnx.Rngs(0)))
        return train_flops_per_example(model, IMAGE_SHAPE, 10, batch_size=4)

    unrolled = flops()
    # XLA counts a scan's body once and a rematerialised forward pass twice, and a cuDNN kernel not at all
    for knobs in ({"scan_blocks": True}, {"scan_blocks": True, "remat": "full"}, {"remat": "dots_saveable"},
                  {"attention": "cudnn"}):
        assert flops(**knobs) == unrolled, knobs


def test_stacked_blocks_split_heads_and_mlp_units_over_tensor_behind_the_layer_axis() -> None:
    rules, mesh = partition_rules(default_model_config("vit")), {"data": 4, "fsdp": 1, "tensor": 2}
    P = jax.sharding.PartitionSpec
    assert partition_spec("params/blocks/attn/qkv/kernel", (3, 16, 3, 2, 8), mesh, 1, rules) == P(
        None, None, None, "tensor", None)
    assert partition_spec("params/blocks/0/attn/qkv/kernel", (16, 3, 2, 8), mesh, 1, rules) == P(
        None, None, "tensor", None)
    assert partition_spec("params/blocks/attn/out/kernel", (3, 2, 8, 16), mesh, 1, rules) == P(
        None, "tensor", None, None)
    assert partition_spec("params/blocks/mlp_in/kernel", (3, 16, 64), mesh, 1, rules) == P(None, None, "tensor")
    assert partition_spec("params/blocks/attn_norm/scale", (3, 16), mesh, 1, rules) == P(None, None)


def test_cudnn_attention_on_cpu_stops_the_dry_run_with_one_error_line(digits_data_dir, capsys) -> None:
    args = tiny_args("vit", digits_data_dir, "model.attention=cudnn", "train.compute_dtype=bfloat16", "train.steps=1")
    assert main(["train", "--dry-run", *args]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: model.attention=cudnn needs NVIDIA GPUs (cuDNN flash attention), but this run's devices are cpu; "
        "use model.attention=xla"
    ]


def test_cudnn_attention_refusals_on_a_gpu_are_config_errors(monkeypatch) -> None:
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # as on a GPU: then the dtype, then jax's own checks
    images = jax.ShapeDtypeStruct((2, *IMAGE_SHAPE), jnp.float32)
    with pytest.raises(ConfigError, match=r"computes in bfloat16 or float16, but this run computes in float32; set "
                                          r"train.compute_dtype=bfloat16"):
        jax.eval_shape(_model(attention="cudnn"), images)
    cfg = default_model_config("vit")
    cfg.update(TINY, attention="cudnn")
    model = build_model(cfg, image_shape=IMAGE_SHAPE, num_classes=10, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    with pytest.raises(ConfigError, match=r"model.attention=cudnn cannot run here \(.+\); use model.attention=xla"):
        jax.eval_shape(model, images)
    cfg.update(width=24, num_heads=4)
    with pytest.raises(ConfigError, match=r"needs a head dimension \(model.width / model.num_heads = 6\) that is a "
                                          "multiple of 8"):
        validate_model_config(cfg, image_shape=IMAGE_SHAPE, num_classes=10)


def test_dry_run_counts_a_scanned_rematerialised_vit_as_the_unrolled_one(digits_data_dir, capsys) -> None:
    """XLA counts a scan's body once and a recomputed forward twice: the dry run's FLOPs per step of a scanned,
    rematerialised ViT equal the plain unrolled model's."""
    def flops_line(*knobs: str) -> str:
        assert main(["train", "--dry-run", *tiny_args("vit", digits_data_dir, "train.steps=1", *knobs)]) == 0
        return re.search(r"^FLOPs per step: .*$", capsys.readouterr().out, re.MULTILINE).group(0)

    assert flops_line("model.scan_blocks=True", "model.remat=full") == flops_line()
