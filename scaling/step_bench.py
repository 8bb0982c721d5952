"""The bare jitted train step of a config on this machine's devices, with the batch already in memory:
the images per second the model itself consumes (the reference of the input and loop benchmarks)."""

from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np

from scaling import sharding
from scaling.data.pipeline import device_augment
from scaling.optim import make_optimizer
from scaling.plan import plan_run
from scaling.steps import make_loss_fn, make_train_step
from scaling.train import initializer


def train_step_images_per_second(config: ml_collections.ConfigDict, steps: int) -> float:
    """Images per second of `steps` compiled train steps on one fixed random batch (after a warm-up step)."""
    plan = plan_run(config)
    facts, batch = plan.facts, plan.batch_size
    mesh = sharding.make_mesh(config.mesh)
    tx = make_optimizer(config.optim)
    train_graph, _, initial_state = initializer(config.model, facts, tx)
    state = jax.device_put(initial_state(np.int32(config.seed)), sharding.replicated(mesh))
    step_fn = make_train_step(make_loss_fn(train_graph), tx, facts.num_classes, config.train.label_smoothing,
                              device_augment(config.data))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, *facts.image_shape), dtype=np.uint8)
    labels = rng.integers(0, facts.num_classes, batch).astype(np.int32)
    images, labels = sharding.global_batch(mesh, images, labels)
    channels = facts.image_shape[-1]
    norm = {"mean": np.full(channels, 0.5, np.float32), "std": np.full(channels, 0.25, np.float32)}
    args = (images, labels, norm, np.float32(config.optim.lr), np.array([config.data.seed, 0], np.int32))
    step = jax.jit(step_fn, donate_argnums=0)
    state, metrics = step(state, *args)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, *args)
    jax.block_until_ready(metrics)
    return steps * batch / (time.perf_counter() - start)
