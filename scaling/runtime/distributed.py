"""One run across many processes (hosts): joining JAX's multi-controller runtime.

Every process runs the same program on its own devices; `jax.distributed.initialize` connects them
before any JAX computation. On a multi-process Slurm step, a multi-host TPU slice, Open MPI or
Kubernetes, JAX finds the coordinator, process count and process id itself; anywhere else they are
given explicitly (`scaling train --coordinator HOST:PORT --num-processes N --process-id I`). A single
process (a laptop, or a one-task Slurm job of the sweep launcher) starts no coordinator. Collectives
between the processes' CPU devices go through gloo.
"""

from __future__ import annotations

import os
from typing import Any

import jax

from scaling.errors import ConfigError


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> None:
    """Join this process to a multi-process run; call before any JAX computation.

    With all three arguments: connect to `coordinator` (HOST:PORT, served by process 0) as process
    `process_id` of `num_processes`. With none: initialize only where JAX's cluster detection finds more
    than one process, or JAX_COORDINATOR_ADDRESS is set; otherwise do nothing. Some but not all three
    arguments is a ConfigError.
    """
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if all(value is None for value in given.values()):
        if os.environ.get("JAX_COORDINATOR_ADDRESS") or detected_process_count() > 1:
            _start()
        return
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} missing: a multi-process run needs --coordinator HOST:PORT (process 0's "
            "address), --num-processes N and --process-id I (0 to N-1) together, or none of them where JAX "
            "detects the cluster itself (Slurm, TPU slices)"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--coordinator {coordinator!r} is not HOST:PORT, e.g. 10.0.0.1:1234 or node001:1234")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ConfigError(
            f"--process-id {process_id} of --num-processes {num_processes}: the process id must lie in 0 to N-1"
        )
    _start(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def detected_process_count() -> int:
    """How many processes the cluster environment JAX detects (Slurm step, TPU slice, ...) runs; 1 if none.

    JAX's own detection (the one `jax.distributed.initialize()` uses), asked only for the count: a
    one-task Slurm job and a single-host TPU VM count 1. The coordinator address is not resolved here.
    """
    from jax._src.clusters import ClusterEnv  # no public API answers this before initializing

    _, count, _, _ = ClusterEnv.auto_detect_unset_distributed_params(
        coordinator_address="unresolved:0", num_processes=None, process_id=None, local_device_ids=[],
        cluster_detection_method=None, initialization_timeout=300,
    )
    return count or 1


def _start(**arguments: Any) -> None:
    """`jax.distributed.initialize`, with gloo for collectives between the processes' CPU devices."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**arguments)

