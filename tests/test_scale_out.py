"""Scale-out of the tiny ViT on the 8 virtual devices: partition rules, FSDP and tensor-parallel meshes, bf16 and
gradient accumulation, each against one device (the ResNet's checks: test_scale_out_resnet.py)."""

from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import SGD, assert_same_checkpoints, final_checkpoint_leaves, tiny_config, train_losses
from jax.sharding import PartitionSpec as P

from scaling.data import dataset_facts
from scaling.errors import ConfigError
from scaling.models import partition_rules, validate_model_config
from scaling.program.build import initializer
from scaling.program.optim import make_optimizer
from scaling.program.sharding import make_mesh, state_shardings
from scaling.train import train_and_evaluate
from scaling.workdir.records import read_result


def _layouts(config, digits_data_dir) -> dict[str, P]:
    facts = dataset_facts("digits", digits_data_dir)
    model = validate_model_config(config.model, image_shape=facts.image_shape, num_classes=facts.num_classes)
    _, _, initial_state, _ = initializer(model, make_optimizer(config.optim))
    abstract = jax.eval_shape(initial_state, np.int32(0))
    rules = partition_rules(config.model)
    shardings = state_shardings(make_mesh(config.mesh), abstract, config.mesh.fsdp_min_size, rules)
    flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
    return {jax.tree_util.keystr(path): leaf.spec for path, leaf in flat}


def test_partition_rules_split_vit_heads_and_mlp_and_fsdp_the_largest_divisible_dimension(digits_data_dir):
    config = tiny_config("vit", digits_data_dir, "mesh.data=1", "mesh.fsdp=4", "mesh.tensor=2",
                         "mesh.fsdp_min_size=100")
    specs = _layouts(config, digits_data_dir)

    def spec(suffix: str, state: str = "['params']") -> P:
        (value,) = [v for k, v in specs.items() if k.startswith(state) and k.endswith(suffix)]
        return value

    assert spec("[0]['attn']['qkv']['kernel']") == P("fsdp", None, "tensor", None)  # [16 width, 3, 2 heads, 8]
    assert spec("[0]['attn']['out']['kernel']") == P("tensor", None, "fsdp")  # [2 heads, 8, 16 width]
    assert spec("[0]['mlp_in']['kernel']") == P("fsdp", "tensor")  # [16, 64 hidden]
    assert spec("[0]['mlp_out']['kernel']") == P("tensor", "fsdp")  # [64 hidden, 16]
    assert spec("['head']['kernel']") == P("fsdp", None)  # [16, 10]: 10 does not divide by 4
    assert spec("[0]['mlp_in']['bias']") == P("tensor")  # 64 elements < fsdp_min_size: no fsdp
    assert spec("[0]['attn_norm']['scale']") == P(None)  # replicated
    # adam follows
    assert spec("[0]['attn']['qkv']['kernel']", "['opt_state'][0].mu") == P("fsdp", None, "tensor", None)
    assert spec(".count", "['opt_state']") == P()


def test_tensor_axis_without_rules_and_indivisible_heads_are_config_errors(digits_data_dir):
    with pytest.raises(ConfigError, match="the model's family declares no tensor-parallel rules"):
        _layouts(tiny_config("resnet", digits_data_dir, "mesh.data=4", "mesh.tensor=2"), digits_data_dir)
    with pytest.raises(ConfigError, match=r"mesh.tensor=4 does not divide"):
        _layouts(tiny_config("vit", digits_data_dir, "mesh.data=2", "mesh.tensor=4"), digits_data_dir)


@pytest.fixture(scope="module")
def vit_one_device(digits_data_dir, tmp_path_factory) -> Path:
    """The tiny ViT trained 3 sgd steps on one device: what the meshes, accumulation and bf16 must reproduce."""
    workdir = tmp_path_factory.mktemp("vit_one_device")
    train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, "mesh.data=1"), workdir)
    return workdir


def test_fsdp_and_tensor_parallel_meshes_match_a_single_device(vit_one_device, digits_data_dir, tmp_path):
    """Same global batch on one device and on FSDP / tensor-parallel meshes of 8. ResNet on fsdp=8 is checked the
    same way by test_run_preempted_on_one_mesh_resumes_on_another (test_scale_out_resnet.py), where it takes over a
    run from one device."""
    for index, mesh in enumerate(["mesh.data=2,mesh.fsdp=4", "mesh.data=2,mesh.fsdp=2,mesh.tensor=2"]):
        workdir = tmp_path / f"mesh{index}"
        result = train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, *mesh.split(",")), workdir)
        assert result.status == "completed" and result.num_devices == 8
        np.testing.assert_allclose(train_losses(workdir), train_losses(vit_one_device), rtol=2e-5, err_msg=mesh)
        assert_same_checkpoints(workdir, vit_one_device, rtol=1e-3, atol=5e-5)


def test_bfloat16_compute_keeps_float32_state_and_tracks_float32_losses(vit_one_device, digits_data_dir, tmp_path):
    result = train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, "mesh.data=1",
                                            "train.compute_dtype=bfloat16"), tmp_path)
    assert result.compute_dtype == "bfloat16" and read_result(vit_one_device)["compute_dtype"] == "float32"
    low, full = train_losses(tmp_path), train_losses(vit_one_device)
    np.testing.assert_allclose(low, full, rtol=2e-2)
    assert low != full  # bf16 really computed in lower precision
    assert {leaf.dtype for leaf in final_checkpoint_leaves(tmp_path).values()} <= {
        np.dtype("float32"), np.dtype("int32")}


def test_gradient_accumulation_matches_the_large_batch(vit_one_device, digits_data_dir, tmp_path):
    train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, "mesh.data=1", "train.microbatches=4"), tmp_path)
    np.testing.assert_allclose(train_losses(tmp_path), train_losses(vit_one_device), rtol=1e-5)
    assert_same_checkpoints(tmp_path, vit_one_device, rtol=1e-3, atol=5e-5)


def test_microbatches_that_do_not_split_the_batch_are_rejected(digits_data_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"train.microbatches=3"):
        train_and_evaluate(tiny_config("vit", digits_data_dir, "train.steps=2", "train.microbatches=3"), tmp_path)
