"""Checks a whole config against the dataset and the devices before anything compiles."""

from __future__ import annotations

import math

import ml_collections

from scaling.data import DatasetFacts
from scaling.data.augment import Augment
from scaling.data.pipeline import PIPELINES, eval_split
from scaling.config.defaults import DURATIONS, OPTIMIZERS, SCHEDULES, WANDB_MODES
from scaling.errors import ConfigError
from scaling.models import validate_model_config
from scaling.program.build import COMPUTE_DTYPES
from scaling.program.sharding import batch_shards, mesh_shape


def validate_config(config: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    """Raise ConfigError naming the first bad field and its fix."""
    _validate_data(config.data, facts)
    validate_compute(config, facts)


def validate_compute(config: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    """The checks that need only the images' shape and the classes (not the splits): model, mesh, training."""
    num_classes = config.data.classes or facts.num_classes
    validate_model_config(config.model, image_shape=facts.image_shape, num_classes=num_classes)
    _validate_mesh(config.mesh)
    _validate_train(config.train, batch_shards(config.mesh))
    _validate_optim(config.optim)
    if config.train.branch_from is not None and config.optim.cooldown_fraction == 0.0:
        raise ConfigError("a cooldown branch (train.branch_from) needs optim.cooldown_fraction > 0, e.g. 0.2")
    _choice("wandb.mode", config.wandb.mode, WANDB_MODES)


def num_train_steps(config: ml_collections.ConfigDict, train_examples: int, flops_per_example: float) -> int:
    """The run's length in steps from exactly one of train.steps, .examples, .epochs, .flops (a compute budget)."""
    train = config.train
    if train.steps is not None:
        return train.steps
    if train.examples is not None:
        examples = train.examples
    elif train.epochs is not None:
        examples = train.epochs * train_examples
    else:
        examples = train.flops / flops_per_example
    return max(1, math.ceil(examples / train.batch_size))


def _validate_data(data: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    splits = {"train_split": data.train_split, "eval_split": eval_split(data, facts)}
    for field, split in splits.items():
        if split not in facts.split_sizes:
            raise ConfigError(
                f"data.{field}={split!r} is not a split of {facts.name}; available: {', '.join(facts.split_sizes)}"
            )
    available = facts.split_sizes[data.train_split]
    if data.train_examples is not None and not 1 <= data.train_examples <= available:
        raise ConfigError(
            f"data.train_examples={data.train_examples} but split {data.train_split!r} of {facts.name} has "
            f"{available} examples; choose 1..{available} or None for the whole split"
        )
    if data.classes is not None and not 1 <= data.classes <= facts.num_classes:
        raise ConfigError(
            f"data.classes={data.classes} but {facts.name} has {facts.num_classes} classes; "
            f"choose 1..{facts.num_classes} or None for all"
        )
    for field in ("examples_per_class", "resolution"):
        if data[field] is not None and data[field] < 1:
            raise ConfigError(f"data.{field} must be positive or None, got {data[field]}")
    if data.minival_per_class < 0:
        raise ConfigError(f"data.minival_per_class must be >= 0 (0: no minival), got {data.minival_per_class}")
    if not 0.0 < data.eval_crop_fraction <= 1.0:
        raise ConfigError(f"data.eval_crop_fraction must lie in (0, 1], e.g. 0.875, got {data.eval_crop_fraction}")
    _choice("data.pipeline", data.pipeline, PIPELINES)
    Augment(**data.augment.to_dict()).check()
    if data.pipeline == "stream" and data.resolution is None:
        raise ConfigError("data.pipeline='stream' crops every image to data.resolution; set it, e.g. 224")


def _validate_mesh(mesh: ml_collections.ConfigDict) -> None:
    mesh_shape(mesh)
    if mesh.fsdp_min_size < 1:
        raise ConfigError(f"mesh.fsdp_min_size must be at least 1, got {mesh.fsdp_min_size}")


def _validate_train(train: ml_collections.ConfigDict, batch_parts: int) -> None:
    durations = {key: train[key] for key in DURATIONS if train[key] is not None}
    if len(durations) != 1:
        raise ConfigError(
            f"set exactly one of train.steps, train.examples, train.epochs, train.flops (got {durations or 'none'}); "
            "e.g. --config.train.epochs=10, and the others None"
        )
    (key, value), = durations.items()
    if value <= 0:
        raise ConfigError(f"train.{key} must be positive, got {value}")
    for key in ("batch_size", "eval_batch_size"):
        if train[key] <= 0 or train[key] % batch_parts:
            raise ConfigError(
                f"train.{key}={train[key]} does not divide over the {batch_parts} devices of the mesh's data x fsdp "
                f"axes; use a positive multiple of {batch_parts}"
            )
    if train.microbatches < 1 or train.batch_size % (train.microbatches * batch_parts):
        raise ConfigError(
            f"train.microbatches={train.microbatches} must be at least 1 and split train.batch_size={train.batch_size} "
            f"into equal micro-batches that divide over the {batch_parts} batch devices; use a divisor of "
            f"{train.batch_size // batch_parts if train.batch_size % batch_parts == 0 else train.batch_size}"
        )
    _choice("train.compute_dtype", train.compute_dtype, tuple(COMPUTE_DTYPES))
    for key in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
        if train[key] < 1:
            raise ConfigError(f"train.{key} must be at least 1, got {train[key]}")
    if train.eval_every_steps < 0:
        raise ConfigError(f"train.eval_every_steps must be >= 0 (0: only at the end), got {train.eval_every_steps}")
    for fraction in train.keep_checkpoint_fractions:
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"train.keep_checkpoint_fractions must lie in (0, 1], got {fraction}")
    if (train.branch_from is None) != (train.branch_fraction is None):
        raise ConfigError("set train.branch_from and train.branch_fraction together (a cooldown branch), or neither")
    if train.branch_fraction is not None and not 0.0 < train.branch_fraction <= 1.0:
        raise ConfigError(f"train.branch_fraction must lie in (0, 1], got {train.branch_fraction}")
    if not 0.0 <= train.label_smoothing < 1.0:
        raise ConfigError(f"train.label_smoothing must be in [0, 1), got {train.label_smoothing}")


def _validate_optim(optim: ml_collections.ConfigDict) -> None:
    _choice("optim.name", optim.name, OPTIMIZERS)
    _choice("optim.schedule", optim.schedule, SCHEDULES)
    if optim.lr <= 0:
        raise ConfigError(f"optim.lr must be positive, got {optim.lr}")
    if optim.weight_decay < 0:
        raise ConfigError(f"optim.weight_decay must be >= 0, got {optim.weight_decay}")
    for key in ("warmup_fraction", "cooldown_fraction"):
        if not 0.0 <= optim[key] < 1.0:
            raise ConfigError(f"optim.{key} must be in [0, 1), got {optim[key]}")
    if not all(0.0 < fraction < 1.0 for fraction in optim.step_boundaries) or not 0.0 < optim.step_factor <= 1.0:
        raise ConfigError(
            f"optim.step_boundaries must lie in (0, 1) and optim.step_factor in (0, 1], got "
            f"{tuple(optim.step_boundaries)} and {optim.step_factor}"
        )
    if optim.grad_clip_norm is not None and optim.grad_clip_norm <= 0:
        raise ConfigError(f"optim.grad_clip_norm must be positive or None, got {optim.grad_clip_norm}")


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{field}={value!r} is not one of: {', '.join(allowed)}")
