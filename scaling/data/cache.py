"""The uint8 image cache of the sweep fast path: each image decoded once, then memory-mapped.

A cache holds the images of one split at one resolution and centre-crop fraction, in the order of
an index array (e.g. the nested class-balanced training order). Row i is the image at file
position order[i], so the N-example subset is rows [0, N) and a sweep's runs on nested subsets of
any size share one cache, which grows when a run asks for more rows than it holds. Labels of a
whole split are cached too (reading them from tfds touches every record once).

Layout: ROOT/<dataset>/<version>/<split>-<resolution>px-crop<fraction>-<order digest>/ with
`images.u8` (raw rows), `meta.json` (rows filled, image shape) and a lock file; labels in
ROOT/<dataset>/<version>/<split>-labels/ (`labels.npy` of int labels, or `label-sets.npz` of a multi-label
split: values and offsets, so nothing is ever unpickled). Builders hold the lock file
(scaling.locks.hold_lock), so two processes asked for the same cache at once build it once (the second
says who holds it and waits); `meta.json` is replaced atomically after the rows it counts are flushed, so
readers never see a partial row. A damaged cache (meta.json unreadable, images.u8 shorter than it
counts, labels unreadable or out of range) is a DataError naming the file and the folder to delete
(never rebuilt behind the user's back: a file damaged once may hide a failing disk). A cache is
`cache_bytes(rows, image_shape)` bytes (one copy of the 50,000 ImageNet validation images at 224 px is
7.5 GB, one per resolution, crop and class subset); `scaling data describe` lists those a config will create.
Any folder may be deleted when no run is reading it: it is rebuilt on demand. A build first checks that the
cache's filesystem has room for the rows it adds (a DataError naming the folder, the bytes needed and free),
and reports its rate and ETA every few seconds (scaling.data.progress).

The root may be remote (`gs://...`, scaling.data.paths): labels are then read and written there through epath
(an object store replaces a whole object at once, so they need no lock), and image caches are read from a
node-local copy (scaling.data.staging), since a memory map needs a local file.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from scaling.data.paths import as_path, is_remote, remote_errors, size_of
from scaling.data.progress import Progress
from scaling.data.source import class_names, data_root, decoded_images, is_multi_label, read_labels, split_size
from scaling.errors import DataError
from scaling.locks import hold_lock

if TYPE_CHECKING:
    import tensorflow_datasets as tfds
    from etils import epath

LABELS_HEADER_BYTES = 128  # numpy's .npy header (format 1.0) of a 1-D int32 array, padded to 64 bytes


def default_cache_root(builder: tfds.core.DatasetBuilder, data_dir: str | None) -> Path | epath.Path:
    """`scaling_cache/` inside the tfds data_dir that holds the dataset (a gs:// one stays gs://)."""
    return as_path(data_root(builder, data_dir)) / "scaling_cache"


def _lock(directory: Path) -> contextlib.AbstractContextManager[None]:
    """The cache lock of `directory`: held by its builder; another process waits, told who holds it."""
    return hold_lock(directory / "lock", f"the cache {directory}", wait=True)


def _unreadable(path: Path, error: Exception) -> DataError:
    """`_damaged` for a file its reader refused (the reader's first sentence: numpy's advice to unpickle omitted)."""
    return _damaged(path, f"{type(error).__name__}: {str(error).split('. ')[0]}")


def _damaged(path: Path, problem: str) -> DataError:
    return DataError(f"the cache file {path} is damaged ({problem}): delete the folder {path.parent} to rebuild "
                     "it (when no run is reading it)")


def _write_json(path: Path, value: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)


def _dataset_dir(builder: tfds.core.DatasetBuilder, root: Path) -> Path:
    return root / builder.info.full_name


def labels_path(builder: tfds.core.DatasetBuilder, split: str, root: Path | epath.Path) -> Path | epath.Path:
    """Where the labels of `split` are cached under `root`."""
    return _dataset_dir(builder, root) / f"{split}-labels" / ("label-sets.npz" if is_multi_label(builder)
                                                              else "labels.npy")


def labels_bytes(count: int) -> int:
    """Bytes of the labels.npy of a split of `count` single-label examples: LABELS_HEADER_BYTES + 4 * count
    (int32). A multi-label split's label-sets.npz is about 4 bytes per label more than that."""
    return LABELS_HEADER_BYTES + 4 * count


def split_labels(builder: tfds.core.DatasetBuilder, split: str, root: Path | epath.Path) -> np.ndarray:
    """All labels of `split` in file order (for multi-label sets an object array of int32 label sets), read from
    tfds once and then from the cache."""
    path = labels_path(builder, split, root)
    if is_remote(root):
        with remote_errors(root):
            if not path.exists():  # an object store writes the whole file at once: no lock, no temporary name
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as file:
                    save_labels(file, read_labels(builder, split))
            return load_labels(path, split_size(builder, split), len(class_names(builder)))
    if not path.exists():
        with _lock(path.parent):
            if not path.exists():
                labels = read_labels(builder, split)
                with open(path.parent / "labels.tmp", "wb") as file:
                    save_labels(file, labels)
                os.replace(path.parent / "labels.tmp", path)
    return load_labels(path, split_size(builder, split), len(class_names(builder)))


def save_labels(file: BinaryIO, labels: np.ndarray) -> None:
    """Write int labels [N] as .npy, or label sets (object array [N] of int arrays) as .npz of their concatenated
    `values` and `offsets` [N + 1] (set i is values[offsets[i]:offsets[i + 1]]): no pickled objects either way."""
    if labels.dtype != object:
        np.save(file, labels, allow_pickle=False)
        return
    offsets = np.cumsum([0, *map(len, labels)], dtype=np.int64)
    np.savez(file, values=np.concatenate([*labels, np.empty(0, np.int32)]).astype(np.int32), offsets=offsets)


def load_labels(path: Path | epath.Path, count: int, num_classes: int) -> np.ndarray:
    """The labels `save_labels` wrote to `path` (local or remote; never unpickling), checked to be `count` labels
    in [0, num_classes); else a DataError naming the file and the fix."""
    try:
        with path.open("rb") as file:
            if path.suffix == ".npz":
                with np.load(file, allow_pickle=False) as stored:
                    values, offsets = stored["values"], stored["offsets"]
            else:
                values, offsets = np.load(file, allow_pickle=False), None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error) from error
    if not (_integers(values) and (offsets is None or (_integers(offsets) and len(offsets) and offsets[0] == 0
                                   and offsets[-1] == len(values) and (np.diff(offsets) >= 0).all()))):
        raise _damaged(path, "not the labels this suite writes")
    found = len(values) if offsets is None else len(offsets) - 1
    if found != count or (len(values) and not 0 <= values.min() <= values.max() < num_classes):
        raise _damaged(path, f"{found:,} labels, the split has {count:,} in 0..{num_classes - 1}")
    if offsets is None:
        return values
    labels = np.empty(count, object)
    for i, (start, stop) in enumerate(itertools.pairwise(offsets)):
        labels[i] = values[start:stop]
    return labels


def _integers(array: np.ndarray) -> bool:
    return array.ndim == 1 and np.issubdtype(array.dtype, np.integer)


def cache_directory(
    builder: tfds.core.DatasetBuilder, split: str, order: np.ndarray, resolution: int | None,
    crop_fraction: float, root: Path
) -> Path:
    """Where the cache of `split` in `order` at this resolution and crop lives."""
    digest = hashlib.sha1(np.ascontiguousarray(order, dtype=np.int64).tobytes()).hexdigest()[:12]
    size = f"{resolution}px" if resolution else "stored"
    return _dataset_dir(builder, root) / f"{split}-{size}-crop{crop_fraction:g}-{digest}"


def cached_images(
    builder: tfds.core.DatasetBuilder,
    split: str,
    order: np.ndarray,
    rows: int,
    image_shape: tuple[int, int, int],
    resolution: int | None,
    crop_fraction: float,
    root: Path,
    *,
    quiet: bool = False,
) -> np.ndarray:
    """Read-only memory map of the first `rows` images of `split` in `order`, decoding those not cached yet."""
    directory = cache_directory(builder, split, order, resolution, crop_fraction, root)
    if rows_filled(directory, image_shape) < rows:
        with _lock(directory):
            filled = rows_filled(directory, image_shape)
            if filled < rows:
                _extend(builder, split, order, filled, rows, image_shape, resolution, crop_fraction, directory, quiet)
    if rows == 0:
        return np.empty((0, *image_shape), np.uint8)
    return np.memmap(directory / "images.u8", np.uint8, "r", shape=(rows, *image_shape))


def cache_bytes(rows: int, image_shape: tuple[int, int, int]) -> int:
    """Bytes of `rows` uint8 images of `image_shape` (H, W, C): rows x H x W x C, exactly the size of a cache's
    images.u8 (its folder adds meta.json, under 1 kB, and an empty lock file; the split's labels are
    `labels_bytes`). ImageNet's 1,281,167 training images at 224x224x3: 192.9 GB."""
    return rows * int(np.prod(image_shape))


def check_free_space(directory: Path, needed: int, what: str) -> None:
    """A DataError naming `directory`, the bytes `needed` and those free unless the filesystem that holds it (or
    will: its nearest existing parent) has `needed` bytes free for `what`."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise DataError(
            f"{what} needs {format_bytes(needed)} in {directory}, but its filesystem has {format_bytes(free)} free: "
            "free space there, or set data.cache_dir (or data.local_cache_dir) to a folder on a filesystem with room"
        )


def format_bytes(size: int) -> str:
    """E.g. '7.5 GB' (decimal units: 1 GB = 1e9 bytes)."""
    unit, scale = next(((unit, scale) for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
                        if size >= scale), ("bytes", 1))
    return f"{size:,} bytes" if scale == 1 else f"{size / scale:.1f} {unit}"


def describe_size(rows: int, image_shape: tuple[int, int, int]) -> str:
    """E.g. '50,000 x 224x224x3 = 7.5 GB'."""
    return f"{rows:,} x {'x'.join(map(str, image_shape))} = {format_bytes(cache_bytes(rows, image_shape))}"


def rows_filled(directory: Path | epath.Path, image_shape: tuple[int, int, int] | None = None) -> int:
    """Rows of the cache in `directory` that are complete (0 if it does not exist), of images of `image_shape` if
    given; a DataError if its meta.json is unreadable or counts more rows than images.u8 holds."""
    meta = _meta(directory)
    if meta is None:
        return 0
    rows, shape = meta["rows"], tuple(meta["image_shape"])
    if image_shape is not None and shape != tuple(image_shape):
        raise _damaged(directory / "meta.json", f"images of shape {shape}, the run reads {tuple(image_shape)}")
    images = directory / "images.u8"
    size, needed = (size_of(images) if images.exists() else 0), cache_bytes(rows, shape)
    if size < needed:
        raise _damaged(images, f"{size:,} bytes, but meta.json counts {describe_size(rows, shape)}")
    return rows


def _file_size(path: Path) -> int:
    """Bytes of the local file at `path` (0 if there is none)."""
    return path.stat().st_size if path.exists() else 0


def _meta(directory: Path | epath.Path) -> dict | None:
    """The cache's meta.json (None if it has none yet), checked to give its rows and image shape."""
    path = directory / "meta.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
        rows, shape = meta["rows"], meta["image_shape"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _unreadable(path, error) from error
    if not (isinstance(rows, int) and rows >= 0 and isinstance(shape, list) and len(shape) == 3
            and all(isinstance(side, int) and side > 0 for side in shape)):
        raise _damaged(path, f"rows {rows!r} and image_shape {shape!r} are not a count and (H, W, C)")
    return meta


def _extend(
    builder: tfds.core.DatasetBuilder, split: str, order: np.ndarray, start: int, stop: int,
    image_shape: tuple[int, int, int], resolution: int | None, crop_fraction: float, directory: Path, quiet: bool,
) -> None:
    """Decode rows [start, stop) into the cache: one pass over the wanted records in file order."""
    row_bytes = int(np.prod(image_shape))
    what = f"the cache of {stop - start:,} more images of {builder.info.full_name}/{split}"
    check_free_space(directory, cache_bytes(stop, image_shape) - _file_size(directory / "images.u8"), what)
    with open(directory / "images.u8", "ab") as file:
        file.truncate(stop * row_bytes)
    images = np.memmap(directory / "images.u8", np.uint8, "r+", shape=(stop, *image_shape))
    wanted_rows = np.arange(start, stop)
    by_file_position = np.argsort(order[start:stop], kind="stable")
    wanted = order[start:stop][by_file_position]
    rows_in_file_order = wanted_rows[by_file_position]
    if not quiet:
        print(f"caching {stop - start:,} images of {builder.info.full_name}/{split} in {directory} "
              f"({format_bytes(cache_bytes(stop - start, image_shape))})", file=sys.stderr, flush=True)
    progress = Progress("cached", stop - start, "images", quiet=quiet)
    done = 0
    for decoded, _ in decoded_images(builder, split, wanted, resolution, crop_fraction, image_shape):
        images[rows_in_file_order[done : done + len(decoded)]] = decoded
        done += len(decoded)
        progress.update(done)
    progress.finish()
    images.flush()
    del images
    meta = {"rows": stop, "image_shape": list(image_shape), "dataset": builder.info.full_name, "split": split}
    history = _meta(directory).get("builds", []) if start else []
    _write_json(directory / "meta.json", {**meta, "builds": [*history, [start, stop]]})
