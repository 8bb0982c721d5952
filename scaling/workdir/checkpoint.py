"""Orbax checkpoints of the training state: async saves by every process (in a background thread when there is
one process), keep-N, digests of the saved arrays checked on restore, resume from the newest readable step."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers
from orbax.checkpoint._src.metadata import array_metadata_store

from scaling.errors import CheckpointError


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Drop the warnings of logger `name` inside the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _UnretrievedSaveErrors(logging.Filter):
    """Drops asyncio's report of a future whose exception nobody retrieved. When one write of an orbax save fails
    (a full disk), the save raises it, and the run records it and says it in one line; orbax leaves the futures of
    its other failed writes unretrieved, and asyncio would log each with a traceback when it is collected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_UnretrievedSaveErrors())


CHECKPOINTS = "checkpoints"
REPLICA_PARALLEL_MIN_BYTES = 2**24
DIGESTS = "array_digests"  # the key of a step's custom metadata holding `digests` of its state
POSITION_WEIGHT, POSITION_SALT = np.uint32(2654435761), np.uint32(2246822519)
FMIX_MULTIPLIERS = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)
DIGEST_BLOCK_WORDS = 2**18  # words summed at a time (a few MB of temporaries: they stay in the CPU's cache)

# Orbax splits the writing of every replicated array across its replicas by slicing it on the devices,
# which compiles one slice program per shape and device: tens of seconds on the first save of a model
# with a hundred small arrays, and about 10 ms per array on every later save. Only slices of at least
# 16 MiB are worth it; smaller arrays are written whole by their first replica. The array metadata store
# (orbax's default, lost by replacing the handler) records which arrays are typed PRNG keys (dropout's), which
# are otherwise restored as their raw key data and crash the resumed train step.
with _quiet_logger("absl"):  # orbax warns of every override, and this one is meant: no warning on every command
    ocp.type_handlers.register_type_handler(
        jax.Array,
        ocp.type_handlers.ArrayHandler(min_slice_bytes_for_replica_parallel=REPLICA_PARALLEL_MIN_BYTES,
                                       array_metadata_store=array_metadata_store.Store()),
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
    """Start an async save of `state` as `step` (a no-op if that step is already saved), with the `digests` of
    its arrays in the step's metadata (computed now, from the state being saved)."""
    if step not in manager.all_steps():
        manager.save(step, args=ocp.args.StandardSave(state), force=True, custom_metadata={DIGESTS: digests(state)})


# One thread saves for the whole process, in the order asked: the loop goes on dispatching steps meanwhile.
_SAVER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-save")
_pending: dict[ocp.CheckpointManager, concurrent.futures.Future] = {}  # each manager's last background save


def save_in_background(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
    """`save` in this process's one saving thread, after the saves asked before it, so the caller goes on at once
    (`state`: arrays that nothing changes or donates, such as a copy). Waits first for the manager's previous
    background `save` to return, so at most one state per manager waits, and raises its error if it failed.

    With several processes it saves now, on the caller's thread: orbax's save then syncs the processes with
    device collectives, which must keep their place among the train steps' collectives on every process."""
    wait_for_saves(manager)
    if jax.process_count() > 1:
        save(manager, step, state)
    else:
        _pending[manager] = _SAVER.submit(save, manager, step, state)


def wait_for_saves(manager: ocp.CheckpointManager) -> None:
    """Wait for the manager's `save_in_background` calls to return (orbax then writes on, asynchronously, until
    its `wait_until_finished`); raise the error of one that failed, once."""
    pending = _pending.pop(manager, None)
    if pending is not None:
        pending.result()


def digests(state: Any) -> dict[str, str]:
    """A digest of the global value of every array of `state`, by its path: 16 hex digits, `a` then `b`.

    The words w_0 .. w_{n-1} of an array are its elements in row-major order, bitcast to the unsigned integer
    of their width (64-bit elements as two 32-bit words; a typed PRNG key array as its key data, bool as uint8)
    and widened to uint32. With p = i mod 2^32 and all arithmetic mod 2^32,

        a = sum_i w_i * (2 * (2654435761 * p) + 1)
        b = sum_i fmix32(w_i XOR (2246822519 * p))

    where fmix32 is MurmurHash3's finaliser (h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35;
    h ^= h >> 16), a bijection of uint32. Each term depends only on a word and its position, and sums mod 2^32
    do not depend on their order, so the digest is the same on any mesh, sharding or number of processes. The
    weights of `a` are odd (invertible mod 2^32) and fmix32 is a bijection, so a change of any single word
    changes both sums. Each process sums one copy of each shard it holds, on the host (no program runs on the
    devices: a collective there could meet the async save's transfers), then the processes add their sums.
    """
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    sums = np.array([_local_sums(leaf) for _, leaf in flat], np.uint64).reshape(-1, 2)
    if jax.process_count() > 1:
        sums = np.asarray(multihost_utils.process_allgather(sums), np.uint64).sum(0)
    sums %= 2**32
    return {jax.tree_util.keystr(path, simple=True, separator="/"): f"{int(a):08x}{int(b):08x}"
            for (path, _), (a, b) in zip(flat, sums, strict=True)}


def _local_sums(leaf: jax.Array) -> tuple[int, int]:
    """The sums `a` and `b` of `digests` over the shards of `leaf` in this process (replica 0 of each)."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    total_a = total_b = 0
    for shard in leaf.addressable_shards:
        if shard.replica_id == 0:
            a, b = _shard_sums(np.asarray(shard.data), shard.index, leaf.shape)
            total_a, total_b = total_a + a, total_b + b
    return total_a % 2**32, total_b % 2**32


def _shard_sums(values: np.ndarray, index: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[int, int]:
    """The sums of `digests` over one shard: `values`, at `index` of an array of `shape`; in blocks of rows that
    stay in the CPU's cache."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    width = min(values.dtype.itemsize, 4)
    ratio = values.dtype.itemsize // width  # words per element
    words = values.view(np.dtype(f"uint{8 * width}")).reshape(*values.shape, ratio)
    starts = [part.start or 0 for part in index] + [0]
    strides = np.cumprod([1, *(*shape, ratio)[:0:-1]])[::-1] % 2**32  # of each axis in the global word array
    rows = max(1, DIGEST_BLOCK_WORDS // max(1, words[0].size)) if words.ndim > 1 else len(words)
    total_a = total_b = 0
    for begin in range(0, len(words), rows):
        block = words[begin : begin + rows].astype(np.uint32)
        position = np.zeros(block.shape, np.uint32)
        for axis, stride in enumerate(strides):
            first = starts[axis] + (begin if axis == 0 else 0)
            along = (np.arange(block.shape[axis], dtype=np.uint64) + first) * np.uint64(stride) % 2**32
            position += along.astype(np.uint32).reshape([-1 if other == axis else 1 for other in range(block.ndim)])
        hashed = block ^ (position * POSITION_SALT)
        for shift, multiplier in zip((16, 13), FMIX_MULTIPLIERS, strict=True):
            hashed = (hashed ^ (hashed >> np.uint32(shift))) * multiplier
        hashed ^= hashed >> np.uint32(16)
        weighted = block * (np.uint32(2) * (position * POSITION_WEIGHT) + np.uint32(1))
        total_a += int(weighted.sum(dtype=np.uint32))
        total_b += int(hashed.sum(dtype=np.uint32))
    return total_a % 2**32, total_b % 2**32


class UnusableStep(CheckpointError):
    """A committed step that cannot be read or whose arrays differ from their digests; `problem` says which."""

    def __init__(self, manager: ocp.CheckpointManager, step: int, problem: str):
        super().__init__(f"checkpoint step {step} in {manager.directory} {problem}; delete {manager.directory}/{step} "
                         "to resume from the previous checkpoint, or use a new --workdir")
        self.problem = problem


def restore_newest(manager: ocp.CheckpointManager, state: Any) -> tuple[int, Any] | None:
    """The newest usable step and its state laid out like `state`; None when there is no checkpoint.

    A save killed midway never commits (orbax writes to a temporary folder and renames it), so it is not
    listed. A committed step that cannot be read or fails its digest check (a damaged disk, a partial copy) is
    moved aside to `STEP.unreadable` when an older step is usable, which is used instead.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    problems = {}
    for index, step in enumerate(steps):
        try:
            restored = restore(manager, step, state)
        except UnusableStep as error:
            if index == len(steps) - 1:
                raise CheckpointError(
                    f"no checkpoint in {manager.directory} can be used (steps {steps}; the oldest, step {step}, "
                    f"{error.problem}); move the folder away to start over, or use a new --workdir"
                ) from error
            problems[step] = error.problem
            continue
        for bad, problem in problems.items():
            aside = Path(manager.directory) / f"{bad}.unreadable"
            print(f"warning: checkpoint step {bad} in {manager.directory} {problem}; moved to {aside}, "
                  f"resuming from step {step}", file=sys.stderr)
            if jax.process_index() == 0:
                (Path(manager.directory) / str(bad)).rename(aside)
        if index:
            manager.reload()
        return step, restored
    return None


def restore(manager: ocp.CheckpointManager, step: int, state: Any) -> Any:
    """The state saved at `step`, laid out like `state`; a clear error if it is missing, cannot be read, or its
    arrays differ from the `digests` saved with them (a step saved without digests is not checked)."""
    if step not in manager.all_steps():
        raise CheckpointError(
            f"{manager.directory} has no checkpoint at step {step} (it has {manager.all_steps()}); "
            "for a cooldown branch, run its trunk first with train.keep_checkpoint_fractions including that point"
        )
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    try:
        restored = manager.restore(step, args=ocp.args.StandardRestore(target))
        # The step's own metadata file only: manager.metadata(step) also reads every array's metadata (seconds).
        saved = ocp.metadata.get_step_metadata(Path(manager.directory) / str(step)).custom_metadata.get(DIGESTS)
    except Exception as error:  # orbax raises many types for damaged files
        raise UnusableStep(manager, step, f"cannot be read ({type(error).__name__}: {error})") from error
    if saved:
        found = digests(restored)
        differ = [name for name, digest in saved.items() if found.get(name) != digest]
        if differ:
            raise UnusableStep(
                manager, step,
                f"is damaged: {len(differ)} of its {len(saved)} arrays differ from the digests saved with them "
                f"({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''}), so its files changed after the save "
                "(a damaged disk or a partial copy)",
            )
    return restored
