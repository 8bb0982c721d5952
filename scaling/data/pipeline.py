"""A run's data from its config: selection, training batches (cached or streamed), evaluation sets.

`open_dataset` opens the run's dataset: a prepared tfds builder, or the synthetic dataset generated in memory
(scaling.data.synthetic, which answers the same questions: facts, labels of a split, images of rows).
`plan_selection` needs only the labels (cached after the first read); `open_run_data` decodes what
the run will use into the uint8 caches that `run_caches` lists (once per sweep) and opens the training path
the config asks for: `data.pipeline = "cache"` gathers batches from the cache, `"stream"` decodes and
crops the full-resolution records on the host at every step. The synthetic dataset's images take the cache's
place: generated into host memory, with no file.

ImageNet-family datasets (`IMAGENET_FAMILY`) have their own defaults, applied when a config is loaded
(scaling.config.defaults.apply_dataset_defaults): 224-pixel images where the stored ones vary in size,
and the standard ImageNet mean and standard deviation for normalisation (other datasets: estimated from
the first NORM_ROWS images of the training order).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import ml_collections
import numpy as np

from scaling.data.augment import Augment
from scaling.data.cache import cache_bytes, cache_directory, cached_images, default_cache_root, split_labels
from scaling.data.catalog import base_name, default_eval_split, eval_split
from scaling.data.paths import as_path, is_remote
from scaling.data.selection import Selection, select
from scaling.data.source import DatasetFacts, builder_facts, class_names, declared_facts, open_builder
from scaling.data.staging import staged_images
from scaling.data.synthetic import SyntheticDataset, is_synthetic
from scaling.data.train_batches import CachedBatches, StreamingBatches, TrainBatches
from scaling.errors import ConfigError

if TYPE_CHECKING:
    import tensorflow_datasets as tfds
    from etils import epath

    Dataset = tfds.core.DatasetBuilder | SyntheticDataset  # what `open_dataset` opens

NORM_ROWS = 10_000  # estimated normalisation statistics come from the first rows of the training order
# Datasets of ImageNet's images and label space: torchvision's mean and std, 224 px where images vary in size.
IMAGENET_FAMILY = ("imagenet2012", "imagenet2012_subset", "imagenet2012_real", "imagenet_resized", "imagenette",
                   "imagenet_v2")
IMAGENET_RESOLUTION = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    norm: dict[str, np.ndarray]  # {"mean": [C], "std": [C]} float32 in [0, 1] pixel units (see `normalization`)


@dataclasses.dataclass(frozen=True)
class CacheUse:
    """One uint8 cache a run reads: the first `rows` images of `split` in `order`, centre-cropped to `crop` of
    the short side and resized to `resolution` (scaling.data.cache keys it by split, resolution, crop, order)."""

    name: str  # "train", "normalization sample", "eval", "minival" or a data.extra_eval name
    builder: Dataset
    split: str
    order: np.ndarray  # file positions; row i is image order[i]
    rows: int
    crop: float
    labels: np.ndarray  # of the split, at order[:rows]
    image_shape: tuple[int, int, int]
    resolution: int | None
    root: Path | epath.Path | None  # the (shared) cache root; None: generated in host memory (synthetic)
    local_root: Path | None = None  # data.local_cache_dir: the run reads a node-local copy (scaling.data.staging)

    @property
    def directory(self) -> Path | None:
        """Its folder under `root` (None: in memory)."""
        if self.root is None:
            return None
        return cache_directory(self.builder, self.split, self.order, self.resolution, self.crop, self.root)

    @property
    def local_directory(self) -> Path | None:
        """Its node-local copy's folder under `local_root` (None: the run reads `directory` in place)."""
        if self.local_root is None:
            return None
        return cache_directory(self.builder, self.split, self.order, self.resolution, self.crop, self.local_root)

    @property
    def size(self) -> int:
        """Bytes of its `rows` images."""
        return cache_bytes(self.rows, self.image_shape)

    def read(self) -> np.ndarray:
        """The images: generated (synthetic), or memory-mapped from the cache, decoding first the rows not cached."""
        if isinstance(self.builder, SyntheticDataset):
            return self.builder.images(self.split, self.order[: self.rows])
        key = (self.builder, self.split, self.order, self.rows, self.image_shape, self.resolution, self.crop)
        if self.local_root is not None:
            return staged_images(*key, self.root, self.local_root)
        return cached_images(*key, self.root)


def is_imagenet_family(name: str) -> bool:
    """Whether `name` (e.g. 'imagenet_resized/64x64') is a dataset of ImageNet's images and classes."""
    return base_name(name) in IMAGENET_FAMILY


def default_resolution(name: str) -> int | None:
    """data.resolution when the config leaves it None: 224 for ImageNet-family datasets whose images vary in size
    (all but imagenet_resized) and for the synthetic dataset, else None (the stored size)."""
    varying = is_imagenet_family(name) and base_name(name) != "imagenet_resized"
    return IMAGENET_RESOLUTION if varying or is_synthetic(name) else None


def known_image_side(data: ml_collections.ConfigDict) -> int | None:
    """The image side a config gives its model, when known without opening the dataset: data.resolution, or the
    stored size named by imagenet_resized/NxN; None otherwise."""
    if data.resolution:
        return data.resolution
    stored = re.fullmatch(r"imagenet_resized/(\d+)x\1(:.*)?", data.name)
    return int(stored.group(1)) if stored else None


def normalization_kind(data: ml_collections.ConfigDict) -> str:
    """data.normalization with "auto" decided: "imagenet" for ImageNet-family datasets, else "estimate"."""
    if data.normalization != "auto":
        return data.normalization
    return "imagenet" if is_imagenet_family(data.name) else "estimate"


def normalization(data: ml_collections.ConfigDict, sample: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-channel mean and std in [0, 1] units: ImageNet's standard ones, or estimated from uint8 `sample`
    [N, H, W, C] (the first NORM_ROWS images of the training order)."""
    if normalization_kind(data) == "imagenet":
        return {"mean": np.array(IMAGENET_MEAN, np.float32), "std": np.array(IMAGENET_STD, np.float32)}
    pixels = sample.reshape(-1, sample.shape[-1]).astype(np.float64) / 255.0
    return {"mean": pixels.mean(0).astype(np.float32), "std": np.maximum(pixels.std(0), 1e-3).astype(np.float32)}


def device_augment(data: ml_collections.ConfigDict) -> Augment:
    """The augmentation the train step applies on the device (when streaming, the crop is done on the host)."""
    settings = data.augment.to_dict()
    if data.pipeline == "stream":
        settings["inception_crop"] = False
    return Augment(**settings)


def open_dataset(data: ml_collections.ConfigDict) -> tuple[Dataset, DatasetFacts]:
    """The run's training dataset (opened once per plan) and its facts at data.resolution: the synthetic dataset,
    or the prepared tfds builder of data.name."""
    if is_synthetic(data.name):
        dataset = SyntheticDataset.from_config(data)
        return dataset, dataset.facts
    builder = open_builder(data.name, data.data_dir)
    return builder, builder_facts(builder, data.name, data.resolution)


def declared_dataset_facts(data: ml_collections.ConfigDict) -> DatasetFacts:
    """`open_dataset`'s facts without a prepared dataset: a tfds dataset's from its definition (split sizes only
    when prepared, see `declared_facts`), enough to compile a model for it."""
    if is_synthetic(data.name):
        return SyntheticDataset.from_config(data).facts
    return declared_facts(data.name, data.data_dir, data.resolution)


def cache_root(data: ml_collections.ConfigDict, builder: Dataset) -> Path | epath.Path | None:
    """data.cache_dir, or `scaling_cache/` in the dataset's tfds data_dir (either may be gs://); None for the
    synthetic dataset (in memory)."""
    if isinstance(builder, SyntheticDataset):
        return None
    return as_path(data.cache_dir) if data.cache_dir else default_cache_root(builder, data.data_dir)


def local_cache_root(data: ml_collections.ConfigDict, root: Path | epath.Path | None) -> Path | None:
    """data.local_cache_dir with environment variables expanded (e.g. $SLURM_TMPDIR, on the node that runs), or
    None; a ConfigError when it is not a local folder, or when it is unset and the cache root `root` is remote
    (a memory map needs a local file)."""
    if root is None:
        return None
    if not data.local_cache_dir:
        if is_remote(root):
            where = "data.cache_dir" if data.cache_dir else "data.cache_dir (by default under data.data_dir)"
            raise ConfigError(
                f"{where} is {root}, a remote store, but the uint8 caches are memory-mapped from local files: set "
                "data.local_cache_dir to a folder on the node's own disk, e.g. /tmp/scaling_cache or "
                "'$SLURM_TMPDIR/scaling_cache' (each node copies the caches there)"
            )
        return None
    local = os.path.expanduser(os.path.expandvars(data.local_cache_dir))
    if is_remote(local) or "$" in local:
        raise ConfigError(
            f"data.local_cache_dir={data.local_cache_dir!r} must be a folder on the node's own disk"
            + (" (an environment variable it names is not set here)" if "$" in local else "")
            + ", e.g. /tmp/scaling_cache or '$SLURM_TMPDIR/scaling_cache'"
        )
    return Path(local)


def dataset_labels(data: ml_collections.ConfigDict, builder: Dataset, split: str) -> np.ndarray:
    """All labels of `split` in file order: generated (synthetic), or read from tfds once and then from the cache."""
    if isinstance(builder, SyntheticDataset):
        return builder.labels(split)
    return split_labels(builder, split, cache_root(data, builder))


def plan_selection(data: ml_collections.ConfigDict, builder: Dataset, num_classes: int) -> Selection:
    """The classes, minival and nested training order the config selects (reads only labels)."""
    return select(
        dataset_labels(data, builder, data.train_split), num_classes, classes=data.classes,
        minival_per_class=data.minival_per_class, train_examples=data.train_examples,
        examples_per_class=data.examples_per_class, seed=data.seed,
        class_names=None if isinstance(builder, SyntheticDataset) else class_names(builder),
    )


def run_caches(
    config: ml_collections.ConfigDict, builder: Dataset, facts: DatasetFacts, selection: Selection,
) -> list[CacheUse]:
    """The uint8 caches the run reads (reads only labels): the training subset (pipeline "cache") or, when
    streaming with estimated normalisation, its first NORM_ROWS images; the evaluation split restricted to the
    chosen classes; minival; each data.extra_eval set."""
    data, root = config.data, cache_root(config.data, builder)
    local_root = local_cache_root(data, root)
    order, rows = selection.train_order, selection.train_examples

    def use(name: str, source: Dataset, split: str, indices: np.ndarray, count: int, crop: float,
            labels: np.ndarray) -> CacheUse:
        return CacheUse(name, source, split, indices, count, crop, labels[indices[:count]], facts.image_shape,
                        data.resolution, root, local_root)

    train_labels = dataset_labels(data, builder, data.train_split)
    uses = []
    if data.pipeline == "cache":
        uses.append(use("train", builder, data.train_split, order, rows, 1.0, train_labels))
    elif normalization_kind(data) == "estimate":
        uses.append(use("normalization sample", builder, data.train_split, order, min(NORM_ROWS, rows), 1.0,
                        train_labels))

    def evaluated(name: str, source: Dataset, split: str) -> CacheUse:
        labels = dataset_labels(data, source, split)
        indices = selection.eval_indices(labels)
        return use(name, source, split, indices, len(indices), data.eval_crop_fraction, labels)

    uses.append(evaluated("eval", builder, eval_split(data, facts)))
    if len(selection.minival):
        uses.append(use("minival", builder, data.train_split, selection.minival, len(selection.minival),
                        data.eval_crop_fraction, train_labels))
    for name in data.extra_eval:
        extra = open_builder(name, data.data_dir)
        uses.append(evaluated(name, extra, default_eval_split(name, extra.info.splits)))
    return uses


def open_run_data(
    config: ml_collections.ConfigDict, builder: Dataset, facts: DatasetFacts, selection: Selection,
    process_index: int = 0, process_count: int = 1,
) -> RunData:
    """Cache what the run needs (decoding only rows not cached yet) and open its training batches."""
    data = config.data
    uses = run_caches(config, builder, facts, selection)
    images = {use.name: use.read() for use in uses}
    cached_train = images.pop("train", None)
    sample = images.pop("normalization sample", cached_train)
    norm = normalization(data, None if sample is None else sample[:NORM_ROWS])
    order = selection.train_order[: selection.train_examples]
    labels = selection.relabel(dataset_labels(data, builder, data.train_split)[order])
    args = (labels, config.train.batch_size, data.seed)
    if data.pipeline == "stream":
        min_area = data.augment.min_area if data.augment.inception_crop else None
        train: TrainBatches = StreamingBatches(
            builder, data.train_split, order, *args, data.resolution, facts.image_shape[-1], min_area,
            process_index, process_count,
        )
    else:
        train = CachedBatches(cached_train, *args, process_index, process_count)
    eval_sets = {use.name: EvalSet(images[use.name], selection.targets(use.labels)) for use in uses
                 if use.name in images}
    return RunData(selection, train, eval_sets, norm)
