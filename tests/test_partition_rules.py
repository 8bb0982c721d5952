"""Tensor-parallel rules live with the model families: each matches only its own family's parameters, at their
rank; sharding applies the rules it is given; ViT and ConvNeXt split over `tensor`, the others refuse it."""

import re

import jax
import pytest
from flax import nnx
from helpers import tiny_config
from jax.sharding import PartitionSpec as P

from scaling.errors import ConfigError
from scaling.models import MODEL_NAMES, build_model, default_model_config, partition_rules
from scaling.program.sharding import partition_spec, path_name
from scaling.tools.dry_run import dry_run

IMAGE_SHAPE = (16, 16, 3)
SMALL = {
    "resnet": {"width": 4, "depth": 10},
    "bit": {"width": 4},
    "vit": {"width": 16, "depth": 2, "num_heads": 2, "patch_size": 4},
    "alexnet": {"width": 8},
    "vgg": {"width": 8, "depth": 11},
    "convnext": {"width": 8, "depth": 4, "patch_size": 1},
}
# Knobs that change a family's parameter layout: every layout is matched (ViT: q/k/v fused or not, blocks stacked
# for a scan or not).
LAYOUTS = {"vit": [{"fused_qkv": fused, "scan_blocks": scan} for fused in (True, False) for scan in (True, False)]}
TENSOR_2 = {"data": 4, "fsdp": 1, "tensor": 2}


def _abstract_model(cfg) -> nnx.Module:
    """The model of `cfg` on IMAGE_SHAPE images, shapes only."""
    return nnx.eval_shape(lambda: build_model(cfg, image_shape=IMAGE_SHAPE, num_classes=10, rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def param_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """The shape of every parameter of a small model of each family (in each of its LAYOUTS), by its path."""
    shapes: dict[str, dict[str, tuple[int, ...]]] = {name: {} for name in MODEL_NAMES}
    for name in MODEL_NAMES:
        for layout in LAYOUTS.get(name, [{}]):
            cfg = default_model_config(name)
            cfg.update(SMALL[name], **layout)
            flat = jax.tree_util.tree_flatten_with_path(nnx.state(_abstract_model(cfg), nnx.Param))[0]
            shapes[name].update({path_name(path): leaf.shape for path, leaf in flat})
    return shapes


def test_vit_and_convnext_are_the_families_with_tensor_parallelism() -> None:
    assert [name for name in MODEL_NAMES if partition_rules(default_model_config(name))] == ["vit", "convnext"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_rule_matches_parameters_of_its_own_family_only_and_at_their_rank(name, param_shapes) -> None:
    for pattern, axes in partition_rules(default_model_config(name)):
        matched = [shape for path, shape in param_shapes[name].items() if re.search(pattern, path)]
        assert matched, f"{name}: {pattern} matches no parameter"
        assert all(len(shape) == len(axes) for shape in matched), f"{name}: {pattern} {axes} vs {matched}"
        for other in set(MODEL_NAMES) - {name}:
            assert not any(re.search(pattern, path) for path in param_shapes[other]), f"{name}: {pattern} in {other}"


def test_sharding_applies_only_the_rules_it_is_given() -> None:
    vit_rules = partition_rules(default_model_config("vit"))
    query = "params/blocks/0/attn/query/kernel"
    assert partition_spec(query, (16, 2, 8), TENSOR_2, 1, ()) == P(None, None, None)
    assert partition_spec(query, (16, 2, 8), TENSOR_2, 1, vit_rules) == P(None, "tensor", None)
    convnext_mlp = "params/stages/0/layers/0/mlp_in/kernel"
    assert partition_spec(convnext_mlp, (8, 32), TENSOR_2, 1, vit_rules) == P(None, None)  # ViT's rules stay ViT's


def test_dry_run_splits_convnext_mlp_hidden_units_over_tensor(digits_data_dir) -> None:
    out = dry_run(tiny_config("convnext", digits_data_dir, "mesh.data=4", "mesh.tensor=2", "train.steps=5"))
    assert "mesh: data=4, fsdp=1, tensor=2 on 8" in out
    layout = {line.split()[0]: re.search(r"\([^()]*\)$", line).group() for line in out.splitlines() if " -> " in line}
    assert layout["stages/*/layers/*/mlp_in/kernel"] == "(None, 'tensor')"
    assert layout["stages/*/layers/*/mlp_in/bias"] == "('tensor',)"
    assert layout["stages/*/layers/*/mlp_out/kernel"] == "('tensor', None)"
    assert layout["stages/*/layers/*/mlp_out/bias"] == "(None,)"
    assert layout["stages/*/layers/*/conv/kernel"] == "(None, None, None, None)"  # depthwise convs stay whole
    assert layout["downsamples/*/layers/*/kernel"] == "(None, None, None, None)"


def test_dry_run_refuses_tensor_parallelism_for_families_without_rules(digits_data_dir) -> None:
    with pytest.raises(ConfigError, match="the model's family declares no tensor-parallel rules"):
        dry_run(tiny_config("resnet", digits_data_dir, "mesh.data=4", "mesh.tensor=2", "train.steps=5"))
