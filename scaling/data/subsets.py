"""Nested class-balanced subsets of a training split.

`class_balanced_order` fixes one seeded order of the whole split in which every
prefix is as class-balanced as possible; a subset of n examples is the first n
of that order. So for one seed the 200-example subset is a prefix of the
400-example one, and scaling along data size only ever adds examples.
"""

from __future__ import annotations

import numpy as np


def _check_seed(seed: int) -> int:
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    return seed


def class_members(labels: np.ndarray, classes: np.ndarray) -> list[np.ndarray]:
    """For each of `classes`, the ascending indices of its examples in `labels` (one sort, not one scan per class)."""
    by_label = np.argsort(labels, kind="stable")
    sorted_labels = labels[by_label]
    starts = np.searchsorted(sorted_labels, classes, "left")
    ends = np.searchsorted(sorted_labels, classes, "right")
    return [by_label[start:end] for start, end in zip(starts, ends)]


def class_balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of all indices whose every prefix is as class-balanced as possible.

    Classes are visited round-robin in a seeded order; each class contributes its
    examples in a seeded shuffled order; classes that run out are skipped. While
    no class is exhausted, per-class counts of any prefix differ by at most one.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}.")
    rng = np.random.default_rng([_check_seed(seed), 0x5EB5E7])
    classes, class_of = np.unique(labels, return_inverse=True)
    class_rank = rng.permutation(len(classes))  # position of each class within a round
    rank_in_class = np.empty(len(labels), np.int64)  # round in which each example is taken
    for members in class_members(class_of, np.arange(len(classes))):
        rank_in_class[rng.permutation(members)] = np.arange(len(members))
    return np.lexsort((class_rank[class_of], rank_in_class)).astype(np.int64)

