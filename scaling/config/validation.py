"""Checks a whole config before anything compiles: every key against its rule (the schema declared in
scaling.config.defaults and the model families), then the checks across keys, the dataset and the devices."""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from scaling.config.defaults import FIELDS
from scaling.config.mesh import batch_shards
from scaling.data import DatasetFacts
from scaling.data.catalog import eval_split
from scaling.data.pipeline import device_augment, normalization_kind
from scaling.data.synthetic import SYNTHETIC, is_synthetic
from scaling.errors import ConfigError
from scaling.models import ModelSpec, validate_model_config
from scaling.models.layers import BN_GROUPS
from scaling.schema import check_fields

DURATIONS = ("steps", "examples", "epochs", "flops")


def validate_config(config: ml_collections.ConfigDict, facts: DatasetFacts) -> ModelSpec:
    """The checked model; ConfigError naming the first bad field and its fix."""
    model = validate_compute(config, facts)
    _check_splits(config.data, facts)
    return model


def validate_compute(config: ml_collections.ConfigDict, facts: DatasetFacts) -> ModelSpec:
    """Every key against its rule, then the checks that need only the images' shape and the classes (not the
    splits): classes, model, duration, batches over the mesh, cooldown branch, streaming. Returns the model,
    checked once here for all that builds it later (with per-device BatchNorm statistics: for this mesh)."""
    check_fields(config, FIELDS)
    _check_classes(config.data, facts)
    model = validate_model_config(config.model, image_shape=facts.image_shape,
                                  num_classes=config.data.classes or facts.num_classes)
    _check_duration(config.train)
    shards = batch_shards(config.mesh)
    _check_batches(config.train, shards)
    device_augment(config.data).groups(config.train.batch_size)  # RandAugment's sub-batches divide the batch
    _check_branch(config)
    _check_synthetic(config.data)
    if config.data.pipeline == "stream" and config.data.resolution is None:
        raise ConfigError("data.pipeline='stream' crops every image to data.resolution; set it, e.g. 224")
    if normalization_kind(config.data) == "imagenet" and facts.image_shape[-1] != 3:
        raise ConfigError(
            f"data.normalization='imagenet' uses ImageNet's RGB mean and std, but {facts.name} has "
            f"{facts.image_shape[-1]} channel(s); use data.normalization='estimate'"
        )
    if model.knobs.get("bn_stats") == "per_device":  # each of the batch's shards normalised by its own statistics
        return dataclasses.replace(model, knobs={**model.knobs, BN_GROUPS: shards})
    return model


def num_train_steps(config: ml_collections.ConfigDict, train_examples: int, flops_per_example: float) -> int:
    """The run's length in steps from exactly one of train.steps, .examples, .epochs, .flops (a compute budget of at
    least one step)."""
    train = config.train
    if train.steps is not None:
        return train.steps
    if train.examples is not None:
        examples = train.examples
    elif train.epochs is not None:
        examples = train.epochs * train_examples
    else:
        step_flops = flops_per_example * train.batch_size
        if train.flops < step_flops:
            raise ConfigError(
                f"train.flops={train.flops:g} is less than one training step costs: {step_flops:.0f} FLOPs "
                f"({flops_per_example:.0f} per example x train.batch_size={train.batch_size}); raise train.flops to "
                f"at least {step_flops:.0f} or lower train.batch_size"
            )
        examples = train.flops / flops_per_example
    return max(1, math.ceil(examples / train.batch_size))


def _check_splits(data: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    """Both splits exist, and the training subset fits in its split."""
    splits = {"train_split": data.train_split, "eval_split": eval_split(data, facts)}
    for field, split in splits.items():
        if split not in facts.split_sizes:
            raise ConfigError(
                f"data.{field}={split!r} is not a split of {facts.name}; available: {', '.join(facts.split_sizes)}"
            )
    available = facts.split_sizes[data.train_split]
    if data.train_examples is not None and data.train_examples > available:
        raise ConfigError(
            f"data.train_examples={data.train_examples} but split {data.train_split!r} of {facts.name} has "
            f"{available} examples; choose 1..{available} or None for the whole split"
        )


def _check_synthetic(data: ml_collections.ConfigDict) -> None:
    """The synthetic dataset is generated in memory: read through the cache path, and in its own label space."""
    if is_synthetic(data.name) and data.pipeline == "stream":
        raise ConfigError("data.pipeline='stream' decodes stored records on the host, but data.name='synthetic' is "
                          "generated in memory (nothing to stream); use data.pipeline='cache'")
    if SYNTHETIC in data.extra_eval or (is_synthetic(data.name) and data.extra_eval):
        raise ConfigError(f"data.extra_eval={tuple(data.extra_eval)} with data.name={data.name!r}: the synthetic "
                          "dataset shares no label space with another dataset; set data.extra_eval=()")


def _check_classes(data: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    if data.classes is not None and data.classes > facts.num_classes:
        raise ConfigError(
            f"data.classes={data.classes} but {facts.name} has {facts.num_classes} classes; "
            f"choose 1..{facts.num_classes} or None for all"
        )


def _check_duration(train: ml_collections.ConfigDict) -> None:
    durations = {key: train[key] for key in DURATIONS if train[key] is not None}
    if len(durations) != 1:
        raise ConfigError(
            f"set exactly one of train.steps, train.examples, train.epochs, train.flops (got {durations or 'none'}); "
            "e.g. --config.train.epochs=10, and the others None"
        )


def _check_batches(train: ml_collections.ConfigDict, batch_parts: int) -> None:
    """The batches, and the micro-batches of a training batch, divide over the mesh's batch devices."""
    for key in ("batch_size", "eval_batch_size"):
        if train[key] % batch_parts:
            raise ConfigError(
                f"train.{key}={train[key]} does not divide over the {batch_parts} devices of the mesh's data x fsdp "
                f"axes; use a positive multiple of {batch_parts}"
            )
    if train.batch_size % (train.microbatches * batch_parts):
        raise ConfigError(
            f"train.microbatches={train.microbatches} must split train.batch_size={train.batch_size} into equal "
            f"micro-batches that divide over the {batch_parts} batch devices; use a divisor of "
            f"{train.batch_size // batch_parts}"
        )


def _check_branch(config: ml_collections.ConfigDict) -> None:
    """A cooldown branch names its trunk and branch point together, and has a cooldown."""
    if (config.train.branch_from is None) != (config.train.branch_fraction is None):
        raise ConfigError("set train.branch_from and train.branch_fraction together (a cooldown branch), or neither")
    if config.train.branch_from is not None and config.optim.cooldown_fraction == 0.0:
        raise ConfigError("a cooldown branch (train.branch_from) needs optim.cooldown_fraction > 0, e.g. 0.2")
