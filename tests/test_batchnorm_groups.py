"""model.bn_stats="per_device": BatchNorm statistics over each device's share of the batch, with the share resolved
from the mesh when the config is validated, and no per-layer cross-device reduction in the compiled train step."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import tiny_config

from scaling.config.validation import validate_compute
from scaling.data import DatasetFacts
from scaling.errors import ConfigError
from scaling.models import describe_model, validate_model_config
from scaling.models.layers import BN_GROUPS, GroupedBatchNorm, batch_norm
from scaling.program.build import build_program
from scaling.program.steps import StepInputs

EPS, MOMENTUM = 1e-5, 0.9  # the suite's BatchNorm (torch's defaults)
DIGITS = DatasetFacts("digits", 10, (8, 8, 1), {})
# depth 4 in 1 stage: a chain of three BatchNorms, each on the output of the one before (stem, two in the block)
TINY = ("train.steps=1", "model.depth=4", "model.num_stages=1", "optim.name=sgd")
# depth 6 in 2 stages: a stem BatchNorm, block 1 (two), block 2 (two, and one on its projection shortcut)
TWO_STAGES = ("train.steps=1", "model.depth=6", "model.num_stages=2")


def normalized(x: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * scale + bias, statistics over all axes but the last (biased variance)."""
    axes = tuple(range(x.ndim - 1))
    return (x - x.mean(axes)) / np.sqrt(x.var(axes) + EPS) * scale + bias


def test_each_group_is_normalised_by_its_own_statistics_and_the_running_ones_average_them() -> None:
    groups, per_group, channels = 4, 3, 5
    rng = np.random.default_rng(0)
    shifts = np.arange(groups)[:, None, None, None, None] * 2.0  # groups with different means and spreads
    x = (rng.normal(size=(groups, per_group, 2, 2, channels)) * (1 + shifts) + shifts).astype(np.float32)
    scale, bias = rng.normal(size=channels).astype(np.float32), rng.normal(size=channels).astype(np.float32)
    layers = {}
    for g in (groups, 1):
        layers[g] = batch_norm(channels, nnx.Rngs(0), None, groups=g)
        layers[g].scale[...], layers[g].bias[...] = jnp.asarray(scale), jnp.asarray(bias)
    batch = jnp.asarray(x.reshape(groups * per_group, 2, 2, channels))
    apply = nnx.jit(lambda layer, batch: layer(batch))  # one compile, not one per eager operation

    grouped = np.asarray(apply(layers[groups], batch)).reshape(x.shape)
    expected = np.stack([normalized(part, scale, bias) for part in x])
    np.testing.assert_allclose(grouped, expected, rtol=1e-4, atol=1e-4)
    whole = np.asarray(apply(layers[1], batch)).reshape(x.shape)  # "global" unchanged: flax's BatchNorm, whole batch
    assert type(layers[1]) is nnx.BatchNorm and type(layers[groups]) is GroupedBatchNorm
    np.testing.assert_allclose(whole, normalized(x.reshape(-1, channels), scale, bias).reshape(x.shape), atol=1e-4)
    assert np.abs(grouped - whole).max() > 1.0

    # the running statistics move from (0, 1) towards the average over the groups of their mean and variance
    axes = (1, 2, 3)
    running_mean = (1 - MOMENTUM) * x.mean(axes).mean(0)
    running_var = MOMENTUM + (1 - MOMENTUM) * x.var(axes).mean(0)
    np.testing.assert_allclose(layers[groups].mean[...], running_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layers[groups].var[...], running_var, rtol=1e-5)
    layers[groups].eval()  # evaluation normalises by the running statistics
    np.testing.assert_allclose(
        np.asarray(apply(layers[groups], batch)).reshape(x.shape),
        (x - running_mean) / np.sqrt(running_var + EPS) * scale + bias, rtol=1e-4, atol=1e-4,
    )


def test_per_device_takes_the_mesh_batch_shards_and_needs_them() -> None:
    # mesh data=-1: all 8 devices split the batch; data=2 x fsdp=2: four of them
    cases = {("model.bn_stats=global",): 1, ("model.bn_stats=per_device",): 8,
             ("model.bn_stats=per_device", "mesh.data=2", "mesh.fsdp=2"): 4}
    for overrides, groups in cases.items():
        model = validate_compute(tiny_config("resnet", "unused", *TWO_STAGES, *overrides), DIGITS)
        built = nnx.eval_shape(lambda model=model: model.build(nnx.Rngs(0)))
        norms = [module for _, module in nnx.iter_modules(built) if isinstance(module, nnx.BatchNorm)]
        assert len(norms) == 6  # stem, two per block, the projection's
        assert all(type(module) is (GroupedBatchNorm if groups > 1 else nnx.BatchNorm) for module in norms)
        assert [getattr(module, "groups", 1) for module in norms] == [groups] * 6
        assert model.knobs.get(BN_GROUPS, 1) == groups
    config = tiny_config("resnet", "unused", *TWO_STAGES, "model.bn_stats=per_device").model
    assert describe_model(config).endswith(" stem small bn per_device")
    with pytest.raises(ConfigError, match=r"per_device.*needs the mesh's batch shards"):
        validate_model_config(config, image_shape=(8, 8, 1), num_classes=10).build(nnx.Rngs(0))
    with pytest.raises(ConfigError, match="unknown key 'bn_stats' for family 'bit'"):  # GroupNorm: no batch statistics
        validate_model_config({"name": "bit", "bn_stats": "per_device"}, image_shape=(8, 8, 1), num_classes=10)


def all_reduces(stats: str) -> tuple[int, str]:
    """All-reduce operations in the compiled train step of the tiny ResNet on the 8 devices (mesh data=8)."""
    config = tiny_config("resnet", "unused", *TINY, f"model.bn_stats={stats}", "mesh.data=8")
    program = build_program(config, validate_compute(config, DIGITS))
    state = jax.tree.map(lambda leaf, where: jax.ShapeDtypeStruct((1, *leaf.shape), leaf.dtype, sharding=where),
                         program.abstract_state, program.packed_shardings)
    inputs = StepInputs.abstract(program.mesh, 1, config.train.batch_size, DIGITS.image_shape)
    # without LLVM's optimisations (they leave the HLO and its collectives as they are): a compile twice as fast
    fast = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    text = program.train_step.lower(state, inputs).compile(compiler_options=fast).as_text()
    return len(re.findall(r"\ball-reduce(?:-start)?\(", text)), text


def test_per_device_statistics_need_no_all_reduce_per_batchnorm_in_the_train_step() -> None:
    global_count, _ = all_reduces("global")
    per_device_count, text = all_reduces("per_device")
    # Global statistics need an all-reduce for each of the three BatchNorms in the forward pass (each waits for the
    # one before, so no combiner can merge them); per device needs none there, only the sums of the gradients (with
    # the running statistics) remain.
    assert per_device_count >= 1 and global_count - per_device_count >= 3, (global_count, per_device_count)
    assert not re.search(r"\b(all-gather|all-to-all|collective-permute)(-start)?\(", text)  # no data moved to group
