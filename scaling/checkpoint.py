"""Orbax checkpoints of the training state: async saves, keep-N, resume from the latest complete step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from scaling.errors import CheckpointError


def checkpoint_manager(workdir: Path, keep: int) -> ocp.CheckpointManager:
    """A manager for `workdir/checkpoints`; half-written steps are never listed as complete."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True, create=True)
    return ocp.CheckpointManager((workdir / "checkpoints").absolute(), options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
    """Start an async save of `state` as `step` (a no-op if that step is already saved)."""
    if step not in manager.all_steps():
        manager.save(step, args=ocp.args.StandardSave(state), force=True)


def restore_latest(manager: ocp.CheckpointManager, state: Any) -> tuple[int, Any]:
    """The latest complete step and its state laid out like `state`; (0, state) when there is none."""
    step = manager.latest_step()
    if step is None:
        return 0, state
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    try:
        restored = manager.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as error:  # orbax raises many types for damaged files
        raise CheckpointError(
            f"checkpoint step {step} in {manager.directory} cannot be read ({type(error).__name__}: {error}); "
            f"delete {manager.directory}/{step} to resume from the previous checkpoint, or use a new --workdir"
        ) from error
    return step, restored
