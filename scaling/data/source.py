"""Opening tfds datasets and reading their splits into uint8 arrays on the host.

Every dataset goes through the same generic tfds path: the embedded `digits`
dataset (prepared offline on first use) and any dataset tfds knows, such as
`imagenet2012` or `imagenette`, once it has been prepared with `tfds build`.
Splits stored as array_record are read by random access through
`builder.as_data_source`; splits stored as tfrecord are streamed in file order
through `builder.as_dataset(shuffle_files=False)`. Either way an example's index
is its position in file order, so labels, subsets and images agree. A prepared
dataset whose files cannot be read (a damaged dataset_info.json, a truncated or
corrupt shard) is a DataError naming the file and how to rebuild the dataset.

TensorFlow and tensorflow_datasets are imported inside the functions that need them (opening, decoding,
resizing, reading), never when this module is imported: without them the suite still trains on in-memory data
(scaling.data.synthetic), and asking for a tfds dataset is a ConfigError naming what to install.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scaling.data.catalog import base_name, how_to_prepare, prepare_command
from scaling.data.decode import decode_batch
from scaling.errors import ConfigError, DataError

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

# Datasets the suite can build itself, offline (their tfds builders: `embedded_builder`).
EMBEDDED_DATASETS = ("digits",)

# Records fetched and decoded per chunk, bounding host memory for encoded bytes.
_CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What the model and the trainer need to know about a dataset, from metadata only."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]  # (H, W, C) after resizing to `resolution` if set
    split_sizes: dict[str, int]


# --------------------------------------------------------------------------- opening


def require_tfds(name: str) -> None:
    """A ConfigError, before anything is read, unless tensorflow_datasets and TensorFlow (which decodes its images)
    are installed: the dataset `name` is read through them."""
    missing = [module for module in ("tensorflow_datasets", "tensorflow") if not _installed(module)]
    if missing:
        raise ConfigError(
            f"the dataset {name!r} is read through tfds, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed here: pip install tensorflow-datasets "
            "tensorflow-cpu, or use data.name=synthetic (generated in memory)"
        )


def _installed(module: str) -> bool:
    """Whether `module` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def embedded_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """The tfds builder of the embedded dataset `name` (one of EMBEDDED_DATASETS), prepared or not."""
    from scaling.data.digits import Digits

    return {"digits": Digits}[name](data_dir=data_dir)


def _default_file_format() -> str:
    try:
        import array_record.python.array_record_module  # noqa: F401
    except Exception:
        return "tfrecord"
    return "array_record"


def prepare_embedded(name: str, data_dir: str | None, file_format: str | None = None) -> None:
    """Writes an embedded dataset into `data_dir` (None = tfds default) if not there yet.

    Nothing is downloaded: the data ships with the code. `file_format` defaults to
    array_record when the array_record package is importable, else tfrecord.
    """
    if name not in EMBEDDED_DATASETS:
        raise DataError(
            f"{name!r} is not an embedded dataset (embedded: {sorted(EMBEDDED_DATASETS)}); "
            f"prepare it with `tfds build {name} --data_dir DIR`."
        )
    require_tfds(name)
    import tensorflow_datasets as tfds

    builder = checked_builder(name, data_dir, lambda: embedded_builder(name, data_dir))
    if builder.is_prepared():
        return
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    tfds.disable_progress_bar()  # a few seconds of work: the bars would only clutter the run's log
    try:
        builder.download_and_prepare(
            download_config=config, file_format=file_format or _default_file_format()
        )
    except Exception:
        # Another process (another host, a parallel test) may have finished first.
        if embedded_builder(name, data_dir).is_prepared():
            return
        raise


def checked_builder(
    name: str, data_dir: str | None, make: Callable[[], tfds.core.DatasetBuilder]
) -> tfds.core.DatasetBuilder:
    """`make()`, or a DataError naming the damaged dataset_info.json of `name` in `data_dir` that made it fail."""
    try:
        return make()
    except Exception as error:
        import tensorflow_datasets as tfds

        root = Path(data_dir or tfds.core.constants.DATA_DIR)
        damaged = [(path, problem) for path in sorted((root / base_name(name)).glob("**/dataset_info.json"))
                   if (problem := _info_problem(path))]
        if not damaged:
            raise
        path, problem = damaged[0]
        raise DataError(
            f"{path} is damaged ({problem}), so tfds cannot open {name}: delete the folder {path.parent} and "
            f"rebuild it with `{prepare_command(name, os.fspath(root))}`"
        ) from error


def _info_problem(path: Path) -> str | None:
    """Why tfds cannot read the dataset_info.json at `path` (in a folder named by its version), or None."""
    import tensorflow_datasets as tfds

    try:
        version = tfds.core.dataset_info.read_from_json(path).version
    except Exception as error:
        return _first_line(error)
    return None if version == path.parent.name else f"it names version {version!r}, its folder {path.parent.name!r}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _damaged_shards(
    builder: tfds.core.DatasetBuilder, split: str, indices: Iterable[int] | None, error: BaseException
) -> DataError:
    """The error for records of `split` (at file positions `indices`; None: any) that cannot be read."""
    info = builder.info.splits[split]
    files = [os.fspath(path) for path in info.filepaths]
    if indices is not None:
        shard_of = np.searchsorted(np.cumsum(info.shard_lengths), np.asarray(list(indices), np.int64), side="right")
        files = [files[shard] for shard in np.unique(shard_of)]
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    name = builder.info.full_name.rsplit("/", 1)[0]
    return DataError(
        f"cannot read the records of {builder.info.full_name}/{split} in {shown} ({_first_line(error)}): the "
        f"dataset's files are damaged or incomplete; delete the folder {builder.data_dir} and rebuild it with "
        f"`{prepare_command(name, data_root(builder, None))}`"
    )


def records_at(
    builder: tfds.core.DatasetBuilder, split: str, source: Any, indices: Iterable[int]
) -> list[dict[str, Any]]:
    """The records of `split` at file positions `indices`, read through `source` (an array_record data source)."""
    indices = [int(i) for i in indices]
    try:
        return source.__getitems__(indices)
    except RuntimeError as error:  # array_record: "Corrupted Riegeli/records file", "open() failed", ...
        raise _damaged_shards(builder, split, indices, error) from error


def _numpy_records(builder: tfds.core.DatasetBuilder, split: str, dataset: Any) -> Iterator[Any]:
    """The elements of `dataset` (read from the tfrecord files of `split`) as numpy values."""
    import tensorflow as tf

    try:
        yield from dataset.as_numpy_iterator()
    except tf.errors.OpError as error:  # e.g. DataLossError: truncated record
        raise _damaged_shards(builder, split, None, error) from error


def data_root(builder: tfds.core.DatasetBuilder, data_dir: str | None) -> str:
    """The tfds data_dir the builder reads from."""
    root = getattr(builder, "_data_dir_root", None)
    return os.fspath(root) if root is not None else (data_dir or "the tfds default data_dir")


def tfds_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """tfds' builder for `name` in `data_dir`, prepared or not (a DataError if tfds does not know the name)."""
    require_tfds(name)
    import tensorflow_datasets as tfds

    try:
        return checked_builder(name, data_dir, lambda: tfds.builder(name, data_dir=data_dir))
    except tfds.core.registered.DatasetNotFoundError as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(
            f"tfds does not know a dataset named {name!r} ({first_line}). "
            f"Use a name from `tfds.list_builders()` (e.g. 'imagenet2012', 'imagenette') "
            f"or an embedded one: {sorted(EMBEDDED_DATASETS)}."
        ) from e


def open_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """A prepared tfds builder for `name` in `data_dir` (None = tfds default dir).

    Embedded datasets are prepared on first use (offline). Any other dataset must
    already be prepared; it is never downloaded here.
    """
    if name in EMBEDDED_DATASETS:
        prepare_embedded(name, data_dir)
        return checked_builder(name, data_dir, lambda: embedded_builder(name, data_dir))
    builder = tfds_builder(name, data_dir)
    if not builder.is_prepared():
        root = data_root(builder, data_dir)
        found = ""
        dataset_dir = os.path.dirname(os.fspath(builder.data_dir))
        if os.path.isdir(dataset_dir):
            present = sorted(v for v in os.listdir(dataset_dir) if not v.startswith("."))
            if present:
                found = f" (found other versions/configs there: {present}; ask for e.g. '{name}:VERSION')"
        raise DataError(
            f"Dataset {name!r} is not prepared in data_dir {root}: looked for "
            f"{builder.data_dir}{found}. {how_to_prepare(name, root)}"
        )
    return builder


# --------------------------------------------------------------------------- metadata


def feature_keys(builder: tfds.core.DatasetBuilder) -> tuple[str, str]:
    """(image key, label key) of the builder's features."""
    keys = builder.info.supervised_keys
    if isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys):
        return keys
    features = builder.info.features
    if "image" in features and "label" in features:
        return "image", "label"
    raise DataError(
        f"Dataset {builder.name!r} has no (image, label) features: {list(features)}; "
        "the suite needs an image classification dataset."
    )


def _stored_shape(builder: tfds.core.DatasetBuilder) -> tuple[int | None, int | None, int | None]:
    shape = tuple(builder.info.features[feature_keys(builder)[0]].shape)
    if len(shape) != 3:
        raise DataError(f"Dataset {builder.name!r} stores images of shape {shape}, expected (H, W, C).")
    return shape  # type: ignore[return-value]


def split_size(builder: tfds.core.DatasetBuilder, split: str) -> int:
    """Examples in `split`, from the metadata (a DataError naming the splits if there is no such split)."""
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(
            f"Dataset {builder.name!r} has no split {split!r}; "
            f"its splits are {sorted(builder.info.splits)}."
        ) from e


def dataset_facts(name: str, data_dir: str | None, resolution: int | None = None) -> DatasetFacts:
    """Classes, image shape and split sizes of a prepared dataset, from metadata only."""
    return builder_facts(open_builder(name, data_dir), name, resolution)


def builder_facts(builder: tfds.core.DatasetBuilder, name: str, resolution: int | None = None) -> DatasetFacts:
    """`dataset_facts` of a dataset already opened with `open_builder`."""
    return _facts(builder, name, resolution)


def declared_facts(name: str, data_dir: str | None, resolution: int | None = None) -> DatasetFacts:
    """Classes and image shape from a dataset's tfds definition, prepared or not (split sizes only if
    prepared): enough to compile a model for it ahead of time."""
    try:
        return dataset_facts(name, data_dir, resolution)
    except DataError as error:
        import tensorflow_datasets as tfds

        try:
            builder = checked_builder(name, data_dir, lambda: tfds.builder(name, data_dir=data_dir))
        except tfds.core.registered.DatasetNotFoundError:
            raise error from None
        return _facts(builder, name, resolution, prepared=False)


def _facts(builder: tfds.core.DatasetBuilder, name: str, resolution: int | None, prepared: bool = True) -> DatasetFacts:
    height, width, channels = _stored_shape(builder)
    if channels is None:
        raise DataError(f"Dataset {name!r} does not fix its number of image channels.")
    if resolution is not None:
        if resolution < 1:
            raise ConfigError(f"data.resolution must be a positive integer or None, got {resolution}.")
        height = width = int(resolution)
    elif height is None or width is None:
        raise ConfigError(
            f"Dataset {name!r} has images of varying size; set data.resolution "
            "(images are centre-cropped to a square and resized to it)."
        )
    num_classes = _label_feature(builder).num_classes
    split_sizes = {s: int(info.num_examples) for s, info in builder.info.splits.items()} if prepared else {}
    return DatasetFacts(
        name=name,
        num_classes=int(num_classes),
        image_shape=(int(height), int(width), int(channels)),
        split_sizes=split_sizes,
    )


# --------------------------------------------------------------------------- reading


def is_random_access(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether the splits are stored as array_record (readable by index)."""
    fmt = builder.info.file_format
    return fmt is not None and str(getattr(fmt, "value", fmt)) == "array_record"


def require_random_access(builder: tfds.core.DatasetBuilder, name: str, data_dir: str | None) -> None:
    """A ConfigError saying exactly how to convert the dataset unless its records can be read by index (what
    data.pipeline='stream' does at every step)."""
    if not is_random_access(builder):
        root = data_root(builder, data_dir)
        raise ConfigError(
            f"data.pipeline='stream' reads records by index, but {name} in {root} is stored as tfrecord only: "
            f"convert it with `{prepare_command(name, root)}` (it writes array_record files beside the tfrecord "
            "ones, about as much disk again; the tfrecord files may then be deleted), or use data.pipeline='cache'"
        )


def _skip_all_but(builder: tfds.core.DatasetBuilder, keep: str) -> dict[str, Any]:
    import tensorflow_datasets as tfds

    return {k: tfds.decode.SkipDecoding() for k in builder.info.features if k != keep}


def _tf_records(builder: tfds.core.DatasetBuilder, split: str, decoders):
    """The split as a tf.data pipeline in file order (shards read one after another)."""
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(interleave_cycle_length=1, try_autocache=False)
    return builder.as_dataset(
        split=split, shuffle_files=False, decoders=decoders, read_config=read_config
    )


def _label_feature(builder: tfds.core.DatasetBuilder) -> tfds.features.ClassLabel:
    """The ClassLabel feature (inside a Sequence for multi-label sets such as imagenet2012_real)."""
    import tensorflow_datasets as tfds

    feature = builder.info.features[feature_keys(builder)[1]]
    return feature.feature if isinstance(feature, tfds.features.Sequence) else feature


def class_names(builder: tfds.core.DatasetBuilder) -> list[str]:
    """The name of each label (ImageNet: its synset, e.g. 'n01440764'), in label order."""
    return list(_label_feature(builder).names)


def is_multi_label(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether each example has a set of labels (e.g. ImageNet ReaL) rather than one."""
    import tensorflow_datasets as tfds

    return isinstance(builder.info.features[feature_keys(builder)[1]], tfds.features.Sequence)


def read_labels(builder: tfds.core.DatasetBuilder, split: str) -> np.ndarray:
    """All labels of `split` in file order (int32; for multi-label sets an object array of int arrays);
    images are not decoded."""
    import tensorflow_datasets as tfds

    n = split_size(builder, split)
    _, label_key = feature_keys(builder)
    multi = is_multi_label(builder)
    if is_random_access(builder):
        source = builder.as_data_source(split, decoders=_skip_all_but(builder, label_key))
        labels = np.empty(len(source), object if multi else np.int32)
        for start in range(0, len(source), _CHUNK):
            records = records_at(builder, split, source, range(start, min(start + _CHUNK, len(source))))
            labels[start : start + len(records)] = [np.asarray(r[label_key], np.int32) for r in records]
    else:
        decoders = tfds.decode.PartialDecoding({label_key: True})
        ds = _tf_records(builder, split, decoders).map(lambda ex: ex[label_key])
        if multi:
            labels = np.empty(n, object)
            labels[:] = [np.asarray(value, np.int32) for value in _numpy_records(builder, split, ds)]
        else:
            chunks = list(_numpy_records(builder, split, ds.batch(8192)))
            labels = np.concatenate(chunks).astype(np.int32) if chunks else np.empty(0, np.int32)
    if len(labels) != n:
        raise DataError(f"Read {len(labels)} labels from {builder.name}/{split}, metadata says {n}.")
    return labels


def read_texts(builder: tfds.core.DatasetBuilder, split: str, key: str) -> list[str]:
    """The text feature `key` (e.g. imagenet2012's 'file_name') of every example of `split`, in file order; images
    are not decoded (though their records are read)."""
    import tensorflow_datasets as tfds

    if is_random_access(builder):
        source = builder.as_data_source(split, decoders=_skip_all_but(builder, key))
        texts = []
        for start in range(0, len(source), _CHUNK):
            records = records_at(builder, split, source, range(start, min(start + _CHUNK, len(source))))
            texts += [record[key] for record in records]
    else:
        ds = _tf_records(builder, split, tfds.decode.PartialDecoding({key: True})).map(lambda ex: ex[key])
        texts = list(_numpy_records(builder, split, ds))
    return [text.decode() if isinstance(text, bytes) else str(text) for text in texts]


def image_sizes(builder: tfds.core.DatasetBuilder, split: str, count: int) -> list[tuple[int, int]]:
    """(height, width) of up to `count` stored images of `split`, spread over it (array_record) or its first ones
    (tfrecord), read from their encoded headers without decoding the pixels."""
    import io

    import tensorflow_datasets as tfds
    from PIL import Image

    image_key, _ = feature_keys(builder)
    decoders = _skip_all_but(builder, image_key) | {image_key: tfds.decode.SkipDecoding()}
    size = split_size(builder, split)
    if is_random_access(builder):
        wanted = np.unique(np.linspace(0, size - 1, min(count, size)).astype(np.int64)) if size else []
        source = builder.as_data_source(split, decoders=decoders)
        encoded = [record[image_key] for record in records_at(builder, split, source, wanted)]
    else:
        ds = _tf_records(builder, split, decoders).map(lambda ex: ex[image_key]).take(count)
        encoded = list(_numpy_records(builder, split, ds))
    sizes = []
    for data in encoded:
        with Image.open(io.BytesIO(data)) as image:
            sizes.append((image.height, image.width))
    return sizes


def encoded_images(
    builder: tfds.core.DatasetBuilder, split: str, wanted: np.ndarray
) -> Iterator[tuple[list[bytes], list[int]]]:
    """Chunks of (encoded image bytes, labels) for the sorted unique indices `wanted`, in that order."""
    import tensorflow_datasets as tfds

    image_key, label_key = feature_keys(builder)
    decoders = {image_key: tfds.decode.SkipDecoding()}
    if is_random_access(builder):
        source = builder.as_data_source(split, decoders=decoders)
        for start in range(0, len(wanted), _CHUNK):
            records = records_at(builder, split, source, wanted[start : start + _CHUNK])
            yield [r[image_key] for r in records], [r[label_key] for r in records]
    else:
        import tensorflow as tf

        mask = np.zeros(split_size(builder, split), bool)
        mask[wanted] = True
        mask_t = tf.constant(mask)
        ds = (
            _tf_records(builder, split, decoders)
            .enumerate()
            .filter(lambda i, ex: tf.gather(mask_t, i))
            .map(lambda i, ex: (ex[image_key], ex[label_key]))
            .batch(_CHUNK)
        )
        for encoded, labels in _numpy_records(builder, split, ds):
            yield list(encoded), [int(x) for x in labels]


def decoded_images(
    builder: tfds.core.DatasetBuilder,
    split: str,
    wanted: np.ndarray,
    resolution: int | None,
    crop_fraction: float = 1.0,
    image_shape: tuple[int, int, int] | None = None,
) -> Iterator[tuple[np.ndarray, list]]:
    """Chunks of (uint8 images [n, H, W, C], labels) for the sorted unique indices `wanted`, centre-cropped
    (see scaling.data.decode.center_crop). All images must decode to one shape (`image_shape` if given)."""
    channels = _stored_shape(builder)[2] or 3
    done = 0
    for encoded, labels in encoded_images(builder, split, wanted):
        decoded = decode_batch(encoded, channels, resolution, crop_fraction)
        shapes = {image.shape for image in decoded} | ({tuple(image_shape)} if image_shape else set())
        if len(shapes) > 1:
            raise ConfigError(
                f"Dataset {builder.name!r} has images of varying size {sorted(shapes)[:3]}; "
                "set data.resolution to resize them to one square size."
            )
        image_shape = decoded.shape[1:]
        done += len(decoded)
        yield decoded, labels
    if done != len(wanted):
        raise DataError(f"Read {done} of {len(wanted)} requested examples from {builder.name}/{split}.")
