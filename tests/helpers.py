"""Shared helpers for the training tests: tiny configs on the digits built by the fixture."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import tensorflow_datasets as tfds
from tensorflow_datasets.core import splits as splits_lib

from scaling.config.loading import load_config
from scaling.workdir.tracking import read_metrics

TINY_MODELS = {
    "resnet": "configs/resnet.py:width=4,depth=10",
    "vit": "configs/vit.py:width=16,depth=2,num_heads=2,patch_size=2",
    "convnext": "configs/convnext.py:width=8,depth=4",
}


def tiny_args(family: str, data_dir: str, *overrides: str) -> list[str]:
    """`scaling train` arguments for a tiny model on the digits, without wandb."""
    base = [f"data.data_dir={data_dir}", "train.epochs=None", "train.batch_size=32", "train.eval_batch_size=64",
            "train.eval_every_steps=0", "wandb.mode=disabled"]
    return ["--config", TINY_MODELS[family], *(f"--config.{item}" for item in [*base, *overrides])]


# The scale-out tests' runs, which must match across meshes. sgd: Adam magnifies float round-off in tiny gradients.
# The compiled step depends on neither the learning rate nor the run's length (scaling.program.optim), so runs that
# differ only in those share one program.
SGD = ("train.steps=3", "train.log_every_steps=1", "optim.name=sgd", "optim.lr=0.1", "mesh.fsdp_min_size=1")


def tiny_config(family: str, data_dir: str, *overrides: str) -> ml_collections.ConfigDict:
    """The config `tiny_args` describes."""
    args = tiny_args(family, data_dir, *overrides)
    return load_config(args[1], [item.removeprefix("--config.") for item in args[2:]])


def final_checkpoint_leaves(workdir: Path) -> dict[str, np.ndarray]:
    """Every array of the latest checkpoint in `workdir`, by its path in the state (on one device here when it
    was saved from devices this process lacks, e.g. by several processes)."""
    here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with ocp.CheckpointManager((workdir / "checkpoints").absolute()) as manager:
        restored = manager.restore(manager.latest_step(),
                                   args=ocp.args.StandardRestore(fallback_sharding=here))
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]}


def train_losses(workdir: Path) -> list[float]:
    """The training loss of each step logged in `workdir`."""
    return [line["train_loss"] for line in read_metrics(workdir) if line["kind"] == "train"]


def assert_same_checkpoints(actual: Path, expected: Path, **tolerance: float) -> None:
    """The latest checkpoints of two workdirs hold the same arrays (within `tolerance`, else exactly)."""
    actual_leaves, expected_leaves = final_checkpoint_leaves(actual), final_checkpoint_leaves(expected)
    assert actual_leaves.keys() == expected_leaves.keys()
    for key, value in expected_leaves.items():
        if tolerance:
            np.testing.assert_allclose(actual_leaves[key], value, err_msg=key, **tolerance)
        else:
            np.testing.assert_array_equal(actual_leaves[key], value, err_msg=key)


@contextmanager
def mock_imagenet(num_examples: int) -> Iterator[None]:
    """tfds' mock imagenet2012 (random images, 1,000 classes) with split sizes injected: its metadata is not
    shipped with tfds. Both splits have `num_examples` examples."""
    splits = splits_lib.SplitDict([
        splits_lib.SplitInfo(name=name, shard_lengths=[num_examples], num_bytes=0, filename_template=None)
        for name in ("train", "validation")
    ])
    with tfds.testing.mock_data(num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE), \
            mock.patch.object(tfds.core.DatasetInfo, "splits", new_callable=mock.PropertyMock, return_value=splits), \
            mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
        yield


# What an accelerator image may lack (the list: jax, flax, optax, orbax-checkpoint, ml-collections, numpy,
# scipy and pandas are all it is sure to hold).
NOT_IN_ACCELERATOR_IMAGES = ("tensorflow", "tensorflow_datasets", "wandb", "submitit", "sklearn", "matplotlib",
                             "pyarrow", "array_record")


def run_without(modules: tuple[str, ...], args: list[str], cwd: Path | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `args` (e.g. [sys.executable, "-c", ...]) in a subprocess where importing any of `modules` (top-level
    names) fails, with this test session's environment (8 CPU devices, caches)."""
    env = {**os.environ, "SCALING_BLOCK_IMPORTS": ",".join(modules),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "without"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
