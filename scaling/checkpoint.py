"""Orbax checkpoints of the training state: async saves, keep-N, resume from the latest complete step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from scaling.errors import CheckpointError

CHECKPOINTS = "checkpoints"


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


def restore_latest(manager: ocp.CheckpointManager, state: Any) -> tuple[int, Any]:
    """The latest complete step and its state laid out like `state`; (0, state) when there is none."""
    step = manager.latest_step()
    return (0, state) if step is None else (step, restore(manager, step, state))


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
