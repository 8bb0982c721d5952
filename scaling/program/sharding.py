"""The device mesh (axes `data`, `fsdp`, `tensor`) and how arrays are laid out on it.

Batches are split over `data` x `fsdp`. Parameters and optimizer state follow rules matched on
their paths (`partition_spec`): the model family's tensor-parallel rules (its PARTITION_RULES, from
`scaling.models.partition_rules`) split dimensions over `tensor`; then every array of at least
`mesh.fsdp_min_size` elements is split over `fsdp` along its largest dimension that divides evenly;
everything else is replicated.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from scaling.config.mesh import AXES, mesh_shape
from scaling.errors import ConfigError
from scaling.models import PartitionRules

BATCH_AXES = ("data", "fsdp")


def make_mesh(mesh_config: ml_collections.ConfigDict) -> Mesh:
    """The (data, fsdp, tensor) mesh over the first devices it needs, with Auto axis types."""
    sizes = mesh_shape(mesh_config)
    count = math.prod(sizes.values())
    return jax.make_mesh(tuple(sizes.values()), AXES, axis_types=(AxisType.Auto,) * len(AXES),
                         devices=jax.devices()[:count])


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, packed: bool = False) -> NamedSharding:
    """Sharding that splits the batch dimension over `data` x `fsdp` (the second one behind a member axis)."""
    return NamedSharding(mesh, PartitionSpec(None, BATCH_AXES) if packed else PartitionSpec(BATCH_AXES))


def global_batch(mesh: Mesh, *local_arrays: np.ndarray, packed: bool = False) -> tuple[jax.Array, ...]:
    """Turn this process's share of a batch into global arrays split over the batch axes."""
    sharding = batch_sharded(mesh, packed)
    return tuple(jax.make_array_from_process_local_data(sharding, array) for array in local_arrays)


def path_name(path: tuple) -> str:
    """A pytree key path as 'blocks/0/attn/query/kernel' (the trailing `.value` of NNX variables dropped)."""
    parts = []
    for key in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
    if parts and parts[-1] == "value":
        parts.pop()
    return "/".join(parts)


def partition_spec(name: str, shape: tuple[int, ...], axis_sizes: dict[str, int], fsdp_min_size: int,
                   rules: PartitionRules) -> PartitionSpec:
    """The layout of the array at path `name`: the first of `rules` that matches it, then FSDP, else replicated."""
    axes: list[str | None] = [None] * len(shape)
    if axis_sizes["tensor"] > 1:
        for pattern, rule in rules:
            if re.search(pattern, name) and len(rule) == len(shape):
                for dim, axis in enumerate(rule):
                    if axis is not None and shape[dim] % axis_sizes[axis]:
                        raise ConfigError(
                            f"{name} has {shape[dim]} entries along dimension {dim}, which mesh.{axis}="
                            f"{axis_sizes[axis]} does not divide; pick a mesh.{axis} that divides it"
                        )
                axes = list(rule)
                break
    fsdp = axis_sizes["fsdp"]
    if fsdp > 1 and math.prod(shape) >= fsdp_min_size:
        free = [dim for dim in range(len(shape)) if axes[dim] is None and shape[dim] % fsdp == 0]
        if free:
            axes[max(free, key=lambda dim: (shape[dim], -dim))] = "fsdp"
    return PartitionSpec(*axes)


def state_shardings(mesh: Mesh, abstract_state: Any, fsdp_min_size: int, rules: PartitionRules) -> Any:
    """A NamedSharding for every array of a (single run's) train state, from `partition_spec` with `rules`."""
    axis_sizes = dict(mesh.shape)
    if axis_sizes["tensor"] > 1 and not any(
        re.search(pattern, path_name(path)) for path, _ in jax.tree_util.tree_flatten_with_path(abstract_state)[0]
        for pattern, _ in rules
    ):
        what = ("none of the model's tensor-parallel rules matches a parameter" if rules
                else "the model's family declares no tensor-parallel rules")
        raise ConfigError(
            f"mesh.tensor={axis_sizes['tensor']} but {what}; use mesh.fsdp or mesh.data for these devices"
        )
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: NamedSharding(
            mesh, partition_spec(path_name(path), leaf.shape, axis_sizes, fsdp_min_size, rules)),
        abstract_state,
    )


def packed(shardings: Any) -> Any:
    """The shardings of the same state stacked over a leading member axis (which is not split)."""
    return jax.tree.map(lambda sharding: NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec)), shardings)


def host_value(tree: Any) -> Any:
    """Numpy copies of the arrays of `tree` (whole, also when their devices span several processes)."""

    def fetch(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return np.asarray(leaf)
        if leaf.is_fully_replicated:
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(fetch, tree)
