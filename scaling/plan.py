"""What a config will do, known before any data is decoded or anything compiled: the run plan."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any

import ml_collections
import numpy as np
from flax import nnx

from scaling.config.validation import num_train_steps, validate_config
from scaling.data import DatasetFacts, dataset_facts
from scaling.data.pipeline import open_dataset, plan_selection
from scaling.data.selection import Selection
from scaling.data.source import require_random_access
from scaling.errors import ConfigError
from scaling.models import ModelSpec, count_params, describe_model
from scaling.program.flops import train_flops_per_example
from scaling.program.optim import cooldown_branch, learning_rates

if TYPE_CHECKING:
    from scaling.data.pipeline import Dataset


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """One run sized from its config, labels and a shape-only model: dataset facts (num_classes: the run's
    classes), examples, parameters, FLOPs, steps, the learning rate of every step and the kept checkpoints."""

    config: ml_collections.ConfigDict
    builder: Dataset  # the training dataset (tfds builder or synthetic), opened once per plan
    facts: DatasetFacts
    selection: Selection
    model: ModelSpec  # checked once, here
    train_examples: int
    params: int
    flops_per_example: float
    num_steps: int  # this run's steps (for a cooldown branch: up to the branch point, plus its cooldown)
    batch_size: int
    trunk_steps: int  # the steps the config's duration describes (the trunk's, for a branch)
    learning_rates: np.ndarray  # [num_steps], float32: the rate of each step (the train step scales by it)
    kept_steps: frozenset[int]  # checkpoints saved and kept forever (branch points of cooldowns)
    branch_step: int | None = None  # where a cooldown branch leaves its trunk

    @property
    def compute(self) -> float:
        """Planned training FLOPs of the whole run."""
        return self.flops_per_example * self.num_steps * self.batch_size

    def result_fields(self) -> dict[str, Any]:
        """The fields of the run's result.json that the plan knows before training."""
        model = self.config.model
        return {
            "family": model.name, "model": describe_model(model), "width": model.width, "depth": model.get("depth"),
            "params": self.params, "flops_per_example": self.flops_per_example, "dataset": self.config.data.name,
            "num_classes": self.facts.num_classes, "train_examples": self.train_examples,
            "resolution": self.facts.image_shape[0], "batch_size": self.batch_size, "num_steps": self.num_steps,
        }


def plan_run(config: ml_collections.ConfigDict) -> RunPlan:
    """Validate `config` against its dataset and devices, and size the run from its labels and a shape-only model."""
    builder, facts = open_dataset(config.data)
    model = validate_config(config, facts)
    if config.data.pipeline == "stream":
        require_random_access(builder, config.data.name, config.data.data_dir)
    _check_extra_eval(config, facts)
    selection = plan_selection(config.data, builder, facts.num_classes)
    facts = dataclasses.replace(facts, num_classes=selection.num_classes)
    params, flops = _model_size(model, facts.num_classes, config.train.batch_size)
    trunk_steps = num_train_steps(config, selection.train_examples, flops)
    rates = learning_rates(config.optim, trunk_steps)
    branch_step = None
    if config.train.branch_from is not None:
        branch_step = max(1, round(config.train.branch_fraction * trunk_steps))
        rates = cooldown_branch(rates, branch_step, math.ceil(branch_step / (1.0 - config.optim.cooldown_fraction)))
    return RunPlan(
        config=config, builder=builder, facts=facts, selection=selection, model=model,
        train_examples=selection.train_examples, params=params, flops_per_example=flops,
        num_steps=len(rates), batch_size=config.train.batch_size, trunk_steps=trunk_steps, learning_rates=rates,
        kept_steps=frozenset(max(1, round(f * trunk_steps)) for f in config.train.keep_checkpoint_fractions),
        branch_step=branch_step,
    )


_SIZES: dict[str, tuple[int, float]] = {}


def _model_size(model: ModelSpec, num_classes: int, batch_size: int) -> tuple[int, float]:
    """Parameters and training FLOPs per example of a shape-only `model`, traced once per process for each model,
    class count and batch (tracing a ViT-B takes seconds; a sweep's points share few models)."""
    key = json.dumps([model.family.__name__, model.knobs, model.image_shape, model.num_classes, num_classes,
                      batch_size], sort_keys=True, default=str)
    if key not in _SIZES:
        abstract_model = nnx.eval_shape(lambda: model.build(nnx.Rngs(0)))
        flops = train_flops_per_example(abstract_model, model.image_shape, num_classes, batch_size)
        _SIZES[key] = count_params(abstract_model), flops
    return _SIZES[key]


def _check_extra_eval(config: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    """Every data.extra_eval set is prepared and labels the same classes as the training dataset."""
    for name in config.data.extra_eval:
        extra = dataset_facts(name, config.data.data_dir, config.data.resolution)
        if extra.num_classes != facts.num_classes:
            raise ConfigError(
                f"data.extra_eval entry {name!r} has {extra.num_classes} classes but {facts.name} has "
                f"{facts.num_classes}; extra evaluation sets must share the training label space"
            )
