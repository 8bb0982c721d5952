"""Which examples form the batch of a given training step.

The training stream is the concatenation of per-epoch permutations of the subset,
epoch e permuted by a generator seeded from (seed, e). Step s takes stream items
[s * batch_size, (s + 1) * batch_size), crossing epoch boundaries where needed.
A batch is a pure function of (num_examples, batch_size, seed, step), so resuming
from a checkpoint and splitting the global batch across hosts are exact.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=8)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    perm.flags.writeable = False  # shared through the cache
    return perm


def batch_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Positions (0..num_examples-1) into the subset for training step `step` (0-based)."""
    num_examples, batch_size, seed, step = int(num_examples), int(batch_size), int(seed), int(step)
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}.")
    start, end = step * batch_size, (step + 1) * batch_size
    parts = []
    pos = start
    while pos < end:
        epoch, offset = divmod(pos, num_examples)
        take = min(end - pos, num_examples - offset)
        parts.append(_epoch_permutation(num_examples, seed, epoch)[offset : offset + take])
        pos += take
    return np.concatenate(parts).astype(np.int64)
