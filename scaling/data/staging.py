"""Node-local copies of the uint8 caches (`data.local_cache_dir`): a run memory-maps its node's copy.

On a cluster, `data.cache_dir` (or the default DATA_DIR/scaling_cache/) is the shared cache and
`data.local_cache_dir` a folder on the node's own disk (e.g. `/tmp/scaling_cache` or
`$SLURM_TMPDIR/scaling_cache`, environment variables expanded on the node). A run's cache is

- built once in the shared folder (under its lock, as without a local dir) when that folder is local or a
  network filesystem, then copied to the node;
- copied from a remote shared folder (`gs://...`, read through etils.epath) when it is built there, else built
  on the node and then published to the shared folder (its images first, its meta.json last, so a reader never
  takes a partial upload for a cache), for the next node to copy.

A copy is atomic: it is written into a hidden `.NAME.partial-PID` folder beside the final one and renamed into
place, so a copy killed half-way is never read (the next start deletes it and copies again). Processes on one
node take turns through a lock file; a copy whose meta.json equals the shared one's and whose images.u8 has the
size that meta.json counts is kept, so later starts on that node copy nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scaling.data.cache import cache_bytes, cache_directory, cached_images, check_free_space, rows_filled
from scaling.data.paths import is_remote, remote_errors, size_of
from scaling.data.progress import Progress
from scaling.locks import hold_lock

if TYPE_CHECKING:
    import tensorflow_datasets as tfds
    from etils import epath

_CHUNK_BYTES = 64 << 20  # copied per read
_MB = 1 << 20


def staged_images(
    builder: tfds.core.DatasetBuilder, split: str, order: np.ndarray, rows: int, image_shape: tuple[int, int, int],
    resolution: int | None, crop_fraction: float, shared_root: Path | epath.Path, local_root: Path,
) -> np.ndarray:
    """Read-only memory map of the first `rows` images of `split` in `order` from the node-local copy under
    `local_root` of the cache under `shared_root` (see the module docstring for when it is built, copied or
    published)."""
    key = (builder, split, order)
    shared = cache_directory(*key, resolution, crop_fraction, shared_root)
    local = cache_directory(*key, resolution, crop_fraction, local_root)
    if rows == 0:
        return np.empty((0, *image_shape), np.uint8)
    if not is_remote(shared_root):
        cached_images(*key, rows, image_shape, resolution, crop_fraction, shared_root)
    with remote_errors(shared_root):
        if rows_filled(shared, image_shape) >= rows:
            stage(shared, local)
        else:
            cached_images(*key, rows, image_shape, resolution, crop_fraction, local_root)
            publish(local, shared)
    return cached_images(*key, rows, image_shape, resolution, crop_fraction, local_root)


def stage(shared: Path | epath.Path, local: Path) -> bool:
    """Copy the cache folder `shared` to `local` unless an identical copy is there; whether it copied."""
    with hold_lock(local.parent / f"{local.name}.lock", f"the node-local copy {local}", wait=True):
        meta = (shared / "meta.json").read_text()  # read first: the rows it counts are complete
        if _is_copy(local, meta):
            return False
        for leftover in local.parent.glob(f".{local.name}.*"):
            shutil.rmtree(leftover)
        size = _counted_bytes(meta)
        check_free_space(local.parent, size, f"the node-local copy of {shared}")
        partial = local.parent / f".{local.name}.partial-{os.getpid()}"
        partial.mkdir(parents=True)
        copy_bytes(shared / "images.u8", partial / "images.u8", size, f"copying {shared} to {local}")
        (partial / "meta.json").write_text(meta)
        if local.exists():
            old = local.parent / f".{local.name}.old-{os.getpid()}"
            local.rename(old)  # a run still reading the old copy keeps its open files
            partial.rename(local)
            shutil.rmtree(old)
        else:
            partial.rename(local)
        return True


def publish(local: Path, shared: epath.Path) -> None:
    """Upload the cache folder `local` to the remote `shared` folder: images.u8, then meta.json (an object store
    replaces a whole object at once, so readers see the old cache or the new one, never a partial one)."""
    meta = (local / "meta.json").read_text()
    copy_bytes(local / "images.u8", shared / "images.u8", _counted_bytes(meta), f"publishing {local} to {shared}")
    (shared / "meta.json").write_text(meta)


def copy_bytes(source: Path | epath.Path, target: Path | epath.Path, size: int, what: str) -> None:
    """Copy the first `size` bytes of `source` to `target` (either local or remote), reporting rate and ETA."""
    print(what, file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress("copied", -(-size // _MB), "MB")
    done = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        while done < size:
            chunk = reader.read(min(_CHUNK_BYTES, size - done))
            if not chunk:
                raise OSError(f"{source} ended after {done:,} of {size:,} bytes")
            writer.write(chunk)
            done += len(chunk)
            progress.update(done // _MB)
    progress.finish()


def needs_copy(shared: Path | epath.Path, local: Path) -> bool:
    """Whether a run on this node would copy the cache `shared` to `local` (no identical copy there yet)."""
    meta = shared / "meta.json"
    return not (meta.exists() and _is_copy(local, meta.read_text()))


def _is_copy(local: Path, meta: str) -> bool:
    """Whether `local` holds a finished copy of the cache whose meta.json reads `meta`."""
    try:
        return (local / "meta.json").read_text() == meta and size_of(local / "images.u8") == _counted_bytes(meta)
    except OSError:
        return False


def _counted_bytes(meta: str) -> int:
    """Bytes of the images the meta.json text `meta` counts."""
    fields = json.loads(meta)
    return cache_bytes(fields["rows"], tuple(fields["image_shape"]))
