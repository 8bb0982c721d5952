"""What a config will do, known before any data is decoded or anything compiled."""

from __future__ import annotations

import dataclasses
import math

import ml_collections
from flax import nnx

from scaling.data import DatasetFacts, dataset_facts, open_builder
from scaling.data.pipeline import plan_selection
from scaling.data.selection import Selection
from scaling.data.source import is_random_access
from scaling.errors import ConfigError
from scaling.program.flops import train_flops_per_example
from scaling.models import build_model, count_params
from scaling.config.validation import num_train_steps, validate_config


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """Sizes of one run: dataset facts (num_classes: the run's classes), examples, parameters, FLOPs, steps."""

    facts: DatasetFacts
    selection: Selection
    train_examples: int
    params: int
    flops_per_example: float
    num_steps: int  # this run's steps (for a cooldown branch: up to the branch point, plus its cooldown)
    batch_size: int
    trunk_steps: int  # the steps the config's duration describes (the trunk's, for a branch)
    branch_step: int | None = None  # where a cooldown branch leaves its trunk

    @property
    def compute(self) -> float:
        """Planned training FLOPs of the whole run."""
        return self.flops_per_example * self.num_steps * self.batch_size


def plan_run(config: ml_collections.ConfigDict) -> RunPlan:
    """Validate `config` against its dataset and devices, and size the run from its labels and a shape-only model."""
    facts = dataset_facts(config.data.name, config.data.data_dir, config.data.resolution)
    validate_config(config, facts)
    builder = open_builder(config.data.name, config.data.data_dir)
    if config.data.pipeline == "stream" and not is_random_access(builder):
        raise ConfigError(
            f"data.pipeline='stream' reads records by index, but {config.data.name} is stored as tfrecord; rebuild "
            "it with `tfds build ... --file_format array_record` or use data.pipeline='cache'"
        )
    _check_extra_eval(config, facts)
    selection = plan_selection(config.data, builder, facts.num_classes)
    facts = dataclasses.replace(facts, num_classes=selection.num_classes)
    abstract_model = nnx.eval_shape(
        lambda: build_model(config.model, image_shape=facts.image_shape, num_classes=facts.num_classes, rngs=nnx.Rngs(0))
    )
    flops = train_flops_per_example(abstract_model, facts.image_shape, facts.num_classes, config.train.batch_size)
    subset = selection.train_examples
    trunk_steps = num_train_steps(config, subset, flops)
    branch_step = num_steps = None
    if config.train.branch_from is not None:
        branch_step = max(1, round(config.train.branch_fraction * trunk_steps))
        num_steps = math.ceil(branch_step / (1.0 - config.optim.cooldown_fraction))
    return RunPlan(
        facts=facts, selection=selection, train_examples=subset, params=count_params(abstract_model), flops_per_example=flops,
        num_steps=num_steps or trunk_steps, batch_size=config.train.batch_size, trunk_steps=trunk_steps,
        branch_step=branch_step,
    )


def _check_extra_eval(config: ml_collections.ConfigDict, facts: DatasetFacts) -> None:
    """Every data.extra_eval set is prepared and labels the same classes as the training dataset."""
    for name in config.data.extra_eval:
        extra = dataset_facts(name, config.data.data_dir, config.data.resolution)
        if extra.num_classes != facts.num_classes:
            raise ConfigError(
                f"data.extra_eval entry {name!r} has {extra.num_classes} classes but {facts.name} has "
                f"{facts.num_classes}; extra evaluation sets must share the training label space"
            )


def kept_steps(config: ml_collections.ConfigDict, trunk_steps: int) -> set[int]:
    """Steps whose checkpoints are saved and kept forever (branch points of cooldowns)."""
    return {max(1, round(fraction * trunk_steps)) for fraction in config.train.keep_checkpoint_fractions}
