"""The uint8 image cache of the sweep fast path: each image decoded once, then memory-mapped.

A cache holds the images of one split at one resolution and centre-crop fraction, in the order of
an index array (e.g. the nested class-balanced training order). Row i is the image at file
position order[i], so the N-example subset is rows [0, N) and a sweep's runs on nested subsets of
any size share one cache, which grows when a run asks for more rows than it holds. Labels of a
whole split are cached too (reading them from tfds touches every record once).

Layout: ROOT/<dataset>/<version>/<split>-<resolution>px-crop<fraction>-<order digest>/ with
`images.u8` (raw rows), `meta.json` (rows filled, image shape) and a lock file. Builders take an
exclusive `flock` on the lock file, so two processes asked for the same cache at once build it
once; `meta.json` is replaced atomically after the rows it counts are flushed, so readers never
see a partial row. A cache is `cache_bytes(rows, image_shape)` bytes (one copy of the 50,000 ImageNet
validation images at 224 px is 7.5 GB, one per resolution, crop and class subset); `scaling data describe`
lists those a config will create. Any folder may be deleted when no run is reading it: it is rebuilt on demand.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from scaling.data.source import data_root, decoded_images, read_labels


def default_cache_root(builder: tfds.core.DatasetBuilder, data_dir: str | None) -> Path:
    """`scaling_cache/` inside the tfds data_dir that holds the dataset."""
    return Path(data_root(builder, data_dir)) / "scaling_cache"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_json(path: Path, value: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)


def _dataset_dir(builder: tfds.core.DatasetBuilder, root: Path) -> Path:
    return root / builder.info.full_name


def split_labels(builder: tfds.core.DatasetBuilder, split: str, root: Path) -> np.ndarray:
    """All labels of `split` in file order, read from tfds once and then from the cache."""
    directory = _dataset_dir(builder, root) / f"{split}-labels"
    path = directory / "labels.npy"
    if not path.exists():
        with _locked(directory):
            if not path.exists():
                labels = read_labels(builder, split)
                with open(directory / "labels.tmp", "wb") as file:
                    np.save(file, labels, allow_pickle=labels.dtype == object)
                os.replace(directory / "labels.tmp", path)
    return np.load(path, allow_pickle=True)  # object arrays: label sets of multi-label evaluation sets


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
    if rows_filled(directory) < rows:
        with _locked(directory):
            filled = rows_filled(directory)
            if filled < rows:
                _extend(builder, split, order, filled, rows, image_shape, resolution, crop_fraction, directory, quiet)
    if rows == 0:
        return np.empty((0, *image_shape), np.uint8)
    return np.memmap(directory / "images.u8", np.uint8, "r", shape=(rows, *image_shape))


def cache_bytes(rows: int, image_shape: tuple[int, int, int]) -> int:
    """Bytes of `rows` uint8 images of `image_shape` (H, W, C): the size of a cache's images.u8."""
    return rows * int(np.prod(image_shape))


def format_bytes(size: int) -> str:
    """E.g. '7.5 GB' (decimal units: 1 GB = 1e9 bytes)."""
    unit, scale = next(((unit, scale) for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
                        if size >= scale), ("bytes", 1))
    return f"{size:,} bytes" if scale == 1 else f"{size / scale:.1f} {unit}"


def describe_size(rows: int, image_shape: tuple[int, int, int]) -> str:
    """E.g. '50,000 x 224x224x3 = 7.5 GB'."""
    return f"{rows:,} x {'x'.join(map(str, image_shape))} = {format_bytes(cache_bytes(rows, image_shape))}"


def rows_filled(directory: Path) -> int:
    """Rows of the cache in `directory` that are complete (0 if it does not exist)."""
    meta = directory / "meta.json"
    return json.loads(meta.read_text())["rows"] if meta.exists() else 0


def _extend(
    builder: tfds.core.DatasetBuilder, split: str, order: np.ndarray, start: int, stop: int,
    image_shape: tuple[int, int, int], resolution: int | None, crop_fraction: float, directory: Path, quiet: bool,
) -> None:
    """Decode rows [start, stop) into the cache: one pass over the wanted records in file order."""
    row_bytes = int(np.prod(image_shape))
    with open(directory / "images.u8", "ab") as file:
        file.truncate(stop * row_bytes)
    images = np.memmap(directory / "images.u8", np.uint8, "r+", shape=(stop, *image_shape))
    wanted_rows = np.arange(start, stop)
    by_file_position = np.argsort(order[start:stop], kind="stable")
    wanted = order[start:stop][by_file_position]
    rows_in_file_order = wanted_rows[by_file_position]
    if not quiet:
        print(f"caching {stop - start:,} images of {builder.info.full_name}/{split} in {directory}", file=sys.stderr)
    done = 0
    for decoded, _ in decoded_images(builder, split, wanted, resolution, crop_fraction, image_shape):
        images[rows_in_file_order[done : done + len(decoded)]] = decoded
        done += len(decoded)
        if not quiet and done < stop - start:
            print(f"  cached {done:,}/{stop - start:,} images", file=sys.stderr, flush=True)
    images.flush()
    del images
    meta = {"rows": stop, "image_shape": list(image_shape), "dataset": builder.info.full_name, "split": split}
    history = json.loads((directory / "meta.json").read_text()).get("builds", []) if start else []
    _write_json(directory / "meta.json", {**meta, "builds": [*history, [start, stop]]})
