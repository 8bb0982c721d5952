"""The device mesh and how arrays are laid out on it (data parallel over the `data` axis)."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def mesh_size(mesh_config: ml_collections.ConfigDict) -> int:
    """Number of devices the config puts on the data axis (-1: all devices)."""
    return jax.device_count() if mesh_config.data == -1 else mesh_config.data


def make_mesh(mesh_config: ml_collections.ConfigDict) -> Mesh:
    """A one-axis `data` mesh over the first `mesh.data` devices, with Auto axis types."""
    size = mesh_size(mesh_config)
    return jax.make_mesh((size,), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=jax.devices()[:size])


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device (parameters, optimizer state)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, packed: bool = False) -> NamedSharding:
    """Sharding that splits the batch dimension over the data axis (the second one behind a member axis)."""
    return NamedSharding(mesh, PartitionSpec(None, DATA_AXIS) if packed else PartitionSpec(DATA_AXIS))


def global_batch(mesh: Mesh, *local_arrays: np.ndarray, packed: bool = False) -> tuple[jax.Array, ...]:
    """Turn this process's share of a batch into global arrays sharded over the data axis."""
    sharding = batch_sharded(mesh, packed)
    return tuple(jax.make_array_from_process_local_data(sharding, array) for array in local_arrays)
