"""`scaling train --dry-run`: compile a config's train step ahead of time for its mesh and report what it
would need, without reading data or training."""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict

import jax
import ml_collections
import numpy as np

from scaling.config.validation import validate_compute, validate_config
from scaling.data.cache import describe_size
from scaling.data.pipeline import declared_dataset_facts
from scaling.data.source import DatasetFacts
from scaling.data.synthetic import is_synthetic
from scaling.models import describe_model
from scaling.program import sharding
from scaling.program.build import Program, build_program
from scaling.program.flops import COUNTED_AS
from scaling.program.steps import StepInputs


def dry_run(config: ml_collections.ConfigDict) -> str:
    """A report of the compiled step: mesh, memory per device, FLOPs per step, layout of each parameter group.

    The dataset need not be prepared: its tfds definition gives the classes, and data.resolution the image
    size (the splits are then not checked); the synthetic dataset is never generated here.
    """
    facts = declared_dataset_facts(config.data)
    model = validate_config(config, facts) if facts.split_sizes else validate_compute(config, facts)
    facts = dataclasses.replace(facts, num_classes=model.num_classes)
    program = build_program(config, model)
    mesh, batch = program.mesh, config.train.batch_size
    lowered = _lowered_step(program, batch, facts.image_shape)
    compiled = lowered.compile()
    memory = compiled.memory_analysis()
    flops = _flops(lowered.cost_analysis())
    # XLA counts the body of a scan once (gradient accumulation, scanned blocks) and a recomputed forward pass twice:
    # count the same step on the whole batch, as scaling.program.flops counts a model (COUNTED_AS)
    recount = {key: value for key, value in COUNTED_AS.items() if config.model.get(key, value) != value}
    if config.train.microbatches > 1 or recount:
        whole = config.copy_and_resolve_references()
        whole.train.microbatches = 1
        whole.model.update(recount)
        counted = build_program(whole, dataclasses.replace(model, knobs={**model.knobs, **recount}))
        flops = _flops(_lowered_step(counted, batch, facts.image_shape).cost_analysis())
    params = program.abstract_state["params"]
    num_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
    auto = (f" (train.compute_dtype=auto on {mesh.devices.flat[0].platform})"
            if config.train.compute_dtype == "auto" else "")
    lines = [
        f"{describe_model(config.model)}: {num_params:,} parameters, {facts.image_shape} images, "
        f"{facts.num_classes} classes ({facts.name}{_source(config.data, facts)})",
        f"mesh: {', '.join(f'{axis}={size}' for axis, size in mesh.shape.items())} on {mesh.devices.size} "
        f"{mesh.devices.flat[0].device_kind} devices ({jax.process_count()} process(es))",
        f"step: global batch {batch} in {config.train.microbatches} micro-batch(es), "
        f"{program.compute_dtype} compute{auto}, float32 parameters and optimizer state",
        f"FLOPs per step: {flops:.4g} (XLA, whole step before partitioning; {flops / batch:.4g} per example)",
        f"memory per device: {_mib(_state_bytes_per_device(program.abstract_state))} train state, "
        f"{_mib(memory.argument_size_in_bytes)} arguments, {_mib(memory.output_size_in_bytes)} outputs, "
        f"{_mib(memory.temp_size_in_bytes)} temporaries, {_mib(memory.alias_size_in_bytes)} donated, "
        f"{_mib(memory.generated_code_size_in_bytes)} code; peak about "
        + _mib(
            memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes
        ),
        "parameter layout (optimizer state follows its parameter; PartitionSpec over the mesh axes):",
    ]
    lines += _parameter_groups(params)
    return "\n".join(lines)


def _source(data: ml_collections.ConfigDict, facts: DatasetFacts) -> str:
    """Where the images come from, after the dataset's name: generated (and how many bytes at most), or not here."""
    if is_synthetic(data.name):
        rows = sum(facts.split_sizes.values())
        return f", generated in host memory: at most {describe_size(rows, facts.image_shape)}"
    return "" if facts.split_sizes else ", not prepared here"


def _lowered_step(program: Program, batch: int, image_shape: tuple[int, int, int]) -> jax.stages.Lowered:
    """The program's train step for a pack of one, lowered on abstract state and inputs (nothing allocated)."""
    state = jax.tree.map(
        lambda leaf, where: jax.ShapeDtypeStruct((1, *leaf.shape), leaf.dtype, sharding=where),
        program.abstract_state, program.packed_shardings,
    )
    return program.train_step.lower(state, StepInputs.abstract(program.mesh, 1, batch, image_shape))


def _flops(analysis: dict | list) -> float:
    return float((analysis[0] if isinstance(analysis, list) else analysis)["flops"])


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _state_bytes_per_device(abstract_state) -> int:
    """Bytes of the train state held by one device under its shardings."""
    return sum(
        int(np.prod(leaf.sharding.shard_shape(leaf.shape))) * leaf.dtype.itemsize
        for leaf in jax.tree.leaves(abstract_state)
    )


def _parameter_groups(params) -> list[str]:
    """One line per parameter group (paths with block numbers replaced by *, same layout): arrays, size, layout."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = re.sub(r"/\d+/", "/*/", sharding.path_name(path))
        groups[name, str(tuple(leaf.sharding.spec))].append(leaf)
    width = max(len(name) for name, _ in groups)
    lines = []
    for (name, spec), leaves in sorted(groups.items()):
        size = sum(int(np.prod(leaf.shape)) for leaf in leaves)
        shard = leaves[0].sharding.shard_shape(leaves[0].shape)
        lines.append(f"  {name:<{width}}  x{len(leaves):<3} {size:>12,} params  {leaves[0].shape!s:<18} "
                     f"-> {shard!s:<18} {spec}")
    return lines
