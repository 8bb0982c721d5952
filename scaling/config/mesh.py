"""Mesh sizes from `config.mesh` and the device count (the mesh itself is built in scaling.program.sharding)."""

from __future__ import annotations

import math

import jax
import ml_collections

from scaling.errors import ConfigError

AXES = ("data", "fsdp", "tensor")


def mesh_shape(mesh_config: ml_collections.ConfigDict) -> dict[str, int]:
    """The size of each mesh axis; the axis set to -1 takes the devices the others leave."""
    sizes = {axis: mesh_config[axis] for axis in AXES}
    named = ", ".join(f"mesh.{axis}={size}" for axis, size in sizes.items())
    fill = [axis for axis, size in sizes.items() if size == -1]
    fixed = math.prod(size for size in sizes.values() if size != -1)
    devices = jax.device_count()
    if len(fill) > 1 or any(size == 0 or size < -1 for size in sizes.values()):
        raise ConfigError(f"{named}: mesh axes must be positive, with at most one -1 (the devices the others leave)")
    if fill:
        if devices % fixed:
            raise ConfigError(
                f"{named}: the {devices} devices do not divide by {fixed}; choose axes that divide {devices}"
            )
        sizes[fill[0]] = devices // fixed
    if math.prod(sizes.values()) > devices:
        raise ConfigError(
            f"{named} needs {math.prod(sizes.values())} devices but there are {devices}; "
            "shrink an axis or set one of them to -1"
        )
    return sizes


def batch_shards(mesh_config: ml_collections.ConfigDict) -> int:
    """Into how many parts the mesh splits a batch (`data` x `fsdp`)."""
    sizes = mesh_shape(mesh_config)
    return sizes["data"] * sizes["fsdp"]
