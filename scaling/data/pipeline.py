"""A run's data from its config: selection, training batches (cached or streamed), evaluation sets.

`plan_selection` needs only the labels (cached after the first read); `open_run_data` decodes what
the run will use into the uint8 cache (once per sweep) and opens the training path the config asks
for: `data.pipeline = "cache"` gathers batches from the cache, `"stream"` decodes and crops the
full-resolution records on the host at every step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scaling.data.augment import Augment
from scaling.data.cache import cached_images, default_cache_root, split_labels
from scaling.data.catalog import default_eval_split, eval_split
from scaling.data.selection import Selection, select
from scaling.data.source import DatasetFacts, open_builder
from scaling.data.train_batches import CachedBatches, StreamingBatches, TrainBatches

NORM_ROWS = 10_000  # normalisation statistics come from the first rows of the training order


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """Evaluation images and their multi-hot targets over the run's classes (several for ImageNet ReaL)."""

    images: np.ndarray  # uint8 [N, H, W, C], possibly memory-mapped
    targets: np.ndarray  # uint8 [N, K]


@dataclasses.dataclass
class RunData:
    """Everything a run reads: its training batches, evaluation sets and normalisation statistics."""

    selection: Selection
    train: TrainBatches
    eval_sets: dict[str, EvalSet]  # "eval" (evaluation split, chosen classes), "minival", data.extra_eval names
    norm_sample: np.ndarray  # uint8 images the normalisation statistics are computed from


def device_augment(data: ml_collections.ConfigDict) -> Augment:
    """The augmentation the train step applies on the device (when streaming, the crop is done on the host)."""
    settings = data.augment.to_dict()
    if data.pipeline == "stream":
        settings["inception_crop"] = False
    return Augment(**settings)


def cache_root(data: ml_collections.ConfigDict, builder: tfds.core.DatasetBuilder) -> Path:
    """data.cache_dir, or `scaling_cache/` in the dataset's tfds data_dir."""
    return Path(data.cache_dir) if data.cache_dir else default_cache_root(builder, data.data_dir)


def plan_selection(data: ml_collections.ConfigDict, builder: tfds.core.DatasetBuilder, num_classes: int) -> Selection:
    """The classes, minival and nested training order the config selects (reads only labels)."""
    labels = split_labels(builder, data.train_split, cache_root(data, builder))
    return select(
        labels, num_classes, classes=data.classes, minival_per_class=data.minival_per_class,
        train_examples=data.train_examples, examples_per_class=data.examples_per_class, seed=data.seed,
    )


def open_run_data(
    config: ml_collections.ConfigDict, builder: tfds.core.DatasetBuilder, facts: DatasetFacts, selection: Selection,
    process_index: int = 0, process_count: int = 1,
) -> RunData:
    """Cache what the run needs (decoding only rows not cached yet) and open its training batches."""
    data, root = config.data, cache_root(config.data, builder)
    shape = facts.image_shape
    train_labels = split_labels(builder, data.train_split, root)
    order = selection.train_order
    labels = selection.relabel(train_labels[order[: selection.train_examples]])

    def cached_in(source: tfds.core.DatasetBuilder):
        def cached(split: str, indices: np.ndarray, rows: int, crop: float) -> np.ndarray:
            return cached_images(source, split, indices, rows, shape, data.resolution, crop, root)
        return cached

    cached = cached_in(builder)

    norm_sample = cached(data.train_split, order, min(NORM_ROWS, selection.train_examples), 1.0)
    args = (labels, config.train.batch_size, data.seed)
    if data.pipeline == "stream":
        min_area = data.augment.min_area if data.augment.inception_crop else None
        train: TrainBatches = StreamingBatches(
            builder, data.train_split, order[: selection.train_examples], *args, data.resolution, shape[-1], min_area,
            process_index, process_count,
        )
    else:
        train = CachedBatches(cached(data.train_split, order, selection.train_examples, 1.0), *args,
                              process_index, process_count)
    split = eval_split(data, facts)
    eval_sets = {"eval": _eval_set(builder, split, selection, cached, data.eval_crop_fraction, root)}
    if len(selection.minival):
        eval_sets["minival"] = EvalSet(
            cached(data.train_split, selection.minival, len(selection.minival), data.eval_crop_fraction),
            selection.targets(train_labels[selection.minival]),
        )
    for name in data.extra_eval:
        extra = open_builder(name, data.data_dir)
        extra_split = default_eval_split(name, extra.info.splits)
        eval_sets[name] = _eval_set(extra, extra_split, selection, cached_in(extra), data.eval_crop_fraction, root)
    return RunData(selection, train, eval_sets, norm_sample)


def _eval_set(builder: tfds.core.DatasetBuilder, split: str, selection: Selection, cached, crop: float,
              root: Path) -> EvalSet:
    """The examples of `split` with a chosen class, centre-cropped, with their multi-hot targets."""
    labels = split_labels(builder, split, root)
    order = selection.eval_indices(labels)
    return EvalSet(cached(split, order, len(order), crop), selection.targets(labels[order]))
