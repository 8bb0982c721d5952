"""What a config will do, known before any data is decoded or anything compiled."""

from __future__ import annotations

import dataclasses
import math

import ml_collections
from flax import nnx

from scaling.data import DatasetFacts, dataset_facts
from scaling.flops import train_flops_per_example
from scaling.models import build_model, count_params
from scaling.validation import num_train_steps, train_subset_size, validate_config


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """Sizes of one run: dataset facts, subset, parameters, train FLOPs per example, steps."""

    facts: DatasetFacts
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
    """Validate `config` against its dataset and devices, and size the run from a shape-only model."""
    facts = dataset_facts(config.data.name, config.data.data_dir, config.data.resolution)
    validate_config(config, facts)
    abstract_model = nnx.eval_shape(
        lambda: build_model(config.model, image_shape=facts.image_shape, num_classes=facts.num_classes, rngs=nnx.Rngs(0))
    )
    flops = train_flops_per_example(abstract_model, facts.image_shape, facts.num_classes, config.train.batch_size)
    subset = train_subset_size(config, facts)
    trunk_steps = num_train_steps(config, subset, flops)
    branch_step = num_steps = None
    if config.train.branch_from is not None:
        branch_step = max(1, round(config.train.branch_fraction * trunk_steps))
        num_steps = math.ceil(branch_step / (1.0 - config.optim.cooldown_fraction))
    return RunPlan(
        facts=facts, train_examples=subset, params=count_params(abstract_model), flops_per_example=flops,
        num_steps=num_steps or trunk_steps, batch_size=config.train.batch_size, trunk_steps=trunk_steps,
        branch_step=branch_step,
    )


def kept_steps(config: ml_collections.ConfigDict, trunk_steps: int) -> set[int]:
    """Steps whose checkpoints are saved and kept forever (branch points of cooldowns)."""
    return {max(1, round(fraction * trunk_steps)) for fraction in config.train.keep_checkpoint_fractions}
