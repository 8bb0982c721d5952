"""Which examples of a dataset a run sees: class subset, minival, nested training subset, evaluation set.

Everything is a pure function of the labels and the config's sizes and seed:
- classes: the first K of one fixed seeded order of all classes (K = None keeps every class in label
  order), the same for every data seed so that "100-class ImageNet" means one thing; labels are
  renumbered 0..K-1 in that order;
- minival: the first `minival_per_class` examples of each chosen class in a fixed seeded order, held
  out of the training split for model selection (also the same for every data seed);
- training order: the remaining examples of the chosen classes in the nested class-balanced order of
  `scaling.data.subsets` seeded by data.seed, so a subset of N examples is the first N of this order;
- evaluation: every example of the evaluation split whose class was chosen, in file order.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from scaling.data.subsets import class_balanced_order, class_members
from scaling.errors import ConfigError

_CLASS_ORDER_SEED = (0, 0xC1A55)
_MINIVAL_SEED = (0, 0x3141)


@dataclasses.dataclass(frozen=True)
class Selection:
    """File-order indices of a run's examples, and the label renumbering they share."""

    classes: np.ndarray  # original label of new class k, for k in 0..K-1
    train_order: np.ndarray  # training examples, nested class-balanced order (subset = a prefix)
    minival: np.ndarray  # held out of train, grouped by class
    train_examples: int  # the subset size: the prefix of train_order a run trains on

    @property
    def num_classes(self) -> int:
        """K, the number of classes the model predicts."""
        return len(self.classes)

    def relabel(self, labels: np.ndarray) -> np.ndarray:
        """Original labels -> 0..K-1 (-1 for classes not chosen)."""
        lookup = np.full(int(max(labels.max(initial=0), self.classes.max(initial=0))) + 1, -1, np.int32)
        lookup[self.classes] = np.arange(len(self.classes), dtype=np.int32)
        return lookup[labels]

    def eval_indices(self, eval_labels: np.ndarray) -> np.ndarray:
        """File-order indices of the evaluation examples with a chosen class (any of a label set's)."""
        if eval_labels.dtype != object:
            return np.flatnonzero(np.isin(eval_labels, self.classes)).astype(np.int64)
        return np.array([i for i, labels in enumerate(eval_labels) if np.isin(labels, self.classes).any()], np.int64)

    def targets(self, labels: np.ndarray) -> np.ndarray:
        """Multi-hot uint8 [N, K] over the chosen classes of int labels [N] or label sets (object array [N])."""
        multi_hot = np.zeros((len(labels), self.num_classes), np.uint8)
        if labels.dtype != object:
            rows, new = np.arange(len(labels)), self.relabel(labels)
        else:
            rows = np.repeat(np.arange(len(labels)), [len(entry) for entry in labels])
            new = self.relabel(np.concatenate([*labels, np.empty(0, np.int32)]).astype(np.int64))
        multi_hot[rows[new >= 0], new[new >= 0]] = 1
        return multi_hot


def chosen_classes(num_classes: int, classes: int | None) -> np.ndarray:
    """All classes in label order, or the first `classes` of the fixed seeded order of them."""
    if classes is None:
        return np.arange(num_classes, dtype=np.int64)
    if not 1 <= classes <= num_classes:
        raise ConfigError(
            f"data.classes={classes} but the dataset has {num_classes} classes; choose 1..{num_classes} or None"
        )
    return np.random.default_rng(_CLASS_ORDER_SEED).permutation(num_classes)[:classes].astype(np.int64)


def select(
    labels: np.ndarray,
    num_classes: int,
    *,
    classes: int | None = None,
    minival_per_class: int = 0,
    train_examples: int | None = None,
    examples_per_class: int | None = None,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> Selection:
    """The run's classes, minival and nested training order (seeded by `seed`) from the training split's labels.

    A class subset (`classes` = K) must have training examples in every chosen class, and a minival more than
    `minival_per_class` in each; `classes` = None keeps the whole label space even where a class has no examples
    (e.g. tfds' mock data) unless a minival is asked for. Errors name the classes by `class_names` (e.g.
    ImageNet synsets, tfds' label names) when given, else by label. The order is computed once per process for
    each labels, classes, minival and seed (ordering ImageNet's 1.28M labels takes a second; a sweep's points share
    it), then shared read-only.
    """
    labels = np.asarray(labels)
    key = (hashlib.sha1(labels.tobytes()).hexdigest(), labels.dtype.str, num_classes, classes, minival_per_class, seed)
    if key not in _ORDERS:
        while len(_ORDERS) >= _KEPT_ORDERS:
            _ORDERS.pop(next(iter(_ORDERS)))
        _ORDERS[key] = _orders(labels, num_classes, classes, minival_per_class, seed, class_names)
    chosen, train_order, minival = _ORDERS[key]
    size = _subset_size(len(train_order), len(chosen), train_examples, examples_per_class)
    return Selection(chosen, train_order, minival, size)


_KEPT_ORDERS = 8
_ORDERS: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _orders(
    labels: np.ndarray, num_classes: int, classes: int | None, minival_per_class: int, seed: int,
    class_names: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`select`'s chosen classes, training order and minival (read-only arrays)."""
    chosen = chosen_classes(num_classes, classes)
    members_of = class_members(labels, chosen)
    if classes is not None or minival_per_class:
        _check_classes_present(labels, chosen, [len(members) for members in members_of], classes, num_classes,
                               minival_per_class, class_names)
    rng = np.random.default_rng(_MINIVAL_SEED)
    minival_parts, pool_parts = [], []
    for members in members_of:
        members = rng.permutation(members)
        minival_parts.append(members[:minival_per_class])
        pool_parts.append(members[minival_per_class:])
    small = [(label, len(members)) for label, members in zip(chosen, members_of) if len(members) <= minival_per_class]
    if minival_per_class and small:
        fewest = min(count for _, count in small)
        raise ConfigError(
            f"data.minival_per_class={minival_per_class} would leave no training examples in "
            f"{_name_counts(small, class_names)}; choose data.minival_per_class < {fewest} (the smallest chosen "
            f"class has {fewest} training examples)"
        )
    pool = np.sort(np.concatenate(pool_parts)) if pool_parts else np.empty(0, np.int64)
    arrays = chosen, pool[class_balanced_order(labels[pool], seed)].astype(np.int64), \
        np.concatenate(minival_parts).astype(np.int64)
    for array in arrays:
        array.setflags(write=False)
    return arrays


def _class_name(label: int, class_names: Sequence[str] | None) -> str:
    return str(class_names[label]) if class_names is not None else f"class {label}"


def _name_counts(counts: list[tuple[int, int | None]], class_names: Sequence[str] | None, shown: int = 10) -> str:
    """'n01440764 (3 examples), n01443537 (1 example) and 5 more' for (label, count) pairs (count None: no count)."""
    named = ", ".join(
        _class_name(label, class_names) + ("" if count is None else f" ({count} example{'s' * (count != 1)})")
        for label, count in counts[:shown]
    )
    return named + (f" and {len(counts) - shown:,} more" if len(counts) > shown else "")


def _check_classes_present(
    labels: np.ndarray, chosen: np.ndarray, counts: list[int], classes: int | None, num_classes: int,
    minival_per_class: int, class_names: Sequence[str] | None,
) -> None:
    """Every chosen class has training examples, else a ConfigError naming the empty ones and the fix."""
    empty = [(int(label), None) for label, count in zip(chosen, counts) if count == 0]
    if not empty:
        return
    present = np.bincount(labels.astype(np.int64), minlength=num_classes)[:num_classes] > 0
    in_order = present[chosen_classes(num_classes, num_classes)]
    leading = int(np.argmin(in_order)) if not in_order.all() else num_classes
    asked = (f"data.classes={classes} (the first {classes} classes of the fixed class order) selects"
             if classes is not None else f"data.minival_per_class={minival_per_class} holds out examples of every "
             f"class, but data.classes=None (all {num_classes:,} classes) includes")
    fix = "prepare the training split from complete data (ImageNet: the whole ILSVRC2012_img_train.tar)"
    if leading:
        fix += f", or choose data.classes <= {leading} (the first {leading} of the fixed class order have examples)"
    raise ConfigError(
        f"{asked} {len(empty):,} class{'es' * (len(empty) != 1)} without training examples: "
        f"{_name_counts(empty, class_names)}; the training split has examples of {int(present.sum()):,} of "
        f"{num_classes:,} classes. A class without examples "
        + ("cannot be learned, yet would be scored" if classes is not None else "has none to hold out") + f": {fix}"
    )


def _subset_size(available: int, num_classes: int, train_examples: int | None, per_class: int | None) -> int:
    if train_examples is not None and per_class is not None:
        raise ConfigError("set data.train_examples or data.examples_per_class, not both (the other None)")
    size = per_class * num_classes if per_class is not None else train_examples
    field = "data.examples_per_class" if per_class is not None else "data.train_examples"
    if size is None:
        return available
    if not 1 <= size <= available:
        raise ConfigError(
            f"{field} asks for {size} training examples but {available} are available (after the class subset "
            f"and minival); choose at most {available if per_class is None else available // num_classes}"
            + (" per class" if per_class is not None else "") + ", or None for all"
        )
    return size
