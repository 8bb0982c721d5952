"""Orbax checkpoints of the training state: async saves by every process, keep-N, resume from the newest
readable step."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from scaling.errors import CheckpointError

CHECKPOINTS = "checkpoints"
REPLICA_PARALLEL_MIN_BYTES = 2**24

# Orbax splits the writing of every replicated array across its replicas by slicing it on the devices,
# which compiles one slice program per shape and device: tens of seconds on the first save of a model
# with a hundred small arrays, and about 10 ms per array on every later save. Only slices of at least
# 16 MiB are worth it; smaller arrays are written whole by their first replica.
ocp.type_handlers.register_type_handler(
    jax.Array, ocp.type_handlers.ArrayHandler(min_slice_bytes_for_replica_parallel=REPLICA_PARALLEL_MIN_BYTES),
    override=True,
)


def checkpoint_manager(workdir: Path, keep: int, keep_steps: set[int] = frozenset()) -> ocp.CheckpointManager:
    """A manager for `workdir/checkpoints` keeping the latest `keep` steps and every step in `keep_steps`.

    Half-written steps are never listed as complete, so a killed save is ignored on restore.
    """
    policy = checkpoint_managers.AnyPreservationPolicy(
        [checkpoint_managers.LatestN(keep), checkpoint_managers.CustomSteps(sorted(keep_steps))]
    )
    options = ocp.CheckpointManagerOptions(preservation_policy=policy, enable_async_checkpointing=True, create=True)
    return ocp.CheckpointManager((workdir / CHECKPOINTS).absolute(), options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
    """Start an async save of `state` as `step` (a no-op if that step is already saved)."""
    if step not in manager.all_steps():
        manager.save(step, args=ocp.args.StandardSave(state), force=True)


def restore_newest(manager: ocp.CheckpointManager, state: Any) -> tuple[int, Any] | None:
    """The newest readable step and its state laid out like `state`; None when there is no checkpoint.

    A save killed midway never commits (orbax writes to a temporary folder and renames it), so it is not
    listed. A committed step that cannot be read (a damaged disk, a partial copy) is moved aside to
    `STEP.unreadable` when an older step can be read, which is used instead.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    for index, step in enumerate(steps):
        try:
            restored = restore(manager, step, state)
        except CheckpointError as error:
            if index == len(steps) - 1:
                raise CheckpointError(
                    f"no checkpoint in {manager.directory} can be read (steps {steps}; the oldest: {error}); "
                    "move the folder away to start over, or use a new --workdir"
                ) from error
            continue
        for bad in steps[:index]:
            aside = Path(manager.directory) / f"{bad}.unreadable"
            print(f"warning: checkpoint step {bad} in {manager.directory} cannot be read; moved to {aside}, "
                  f"resuming from step {step}", file=sys.stderr)
            if jax.process_index() == 0:
                (Path(manager.directory) / str(bad)).rename(aside)
        if index:
            manager.reload()
        return step, restored
    return None


def restore(manager: ocp.CheckpointManager, step: int, state: Any) -> Any:
    """The state saved at `step`, laid out like `state`; a clear error if it is missing or damaged."""
    if step not in manager.all_steps():
        raise CheckpointError(
            f"{manager.directory} has no checkpoint at step {step} (it has {manager.all_steps()}); "
            "for a cooldown branch, run its trunk first with train.keep_checkpoint_fractions including that point"
        )
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    try:
        return manager.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as error:  # orbax raises many types for damaged files
        raise CheckpointError(
            f"checkpoint step {step} in {manager.directory} cannot be read ({type(error).__name__}: {error}); "
            f"delete {manager.directory}/{step} to resume from the previous checkpoint, or use a new --workdir"
        ) from error
