"""Data and cache paths that may be local or remote (`gs://bucket/...`), through etils.epath as tfds reads them.

A local path (no `scheme://`) is a pathlib.Path, so memory maps and `flock` work on it; any other is an
epath.Path, which reads and writes gs:// (and the other schemes epath knows) but cannot be memory-mapped or
locked: uint8 caches are read from a local copy (data.local_cache_dir, scaling.data.staging).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from etils import epath

from scaling.errors import BusyError, CheckpointError, ConfigError, DataError, RecordError


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` names a remote store (`gs://...`, any `scheme://`) rather than a local file."""
    return "://" in os.fspath(path)


def as_path(path: str | os.PathLike) -> Path | epath.Path:
    """`path` as a pathlib.Path when local (`~` expanded), else as an epath.Path (which keeps `gs://`)."""
    return epath.Path(path) if is_remote(path) else Path(os.path.expanduser(os.fspath(path)))


def size_of(path: Path | epath.Path) -> int:
    """Bytes of the file at `path` (local or remote)."""
    return os.stat(path).st_size if isinstance(path, Path) else epath.Path(path).stat().length


@contextlib.contextmanager
def remote_errors(path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, a failure of the remote store at `path` (no network, no credentials, no such bucket)
    becomes one DataError naming it and the fix; local paths and the suite's own errors pass through."""
    try:
        yield
    except (ConfigError, DataError, CheckpointError, BusyError, RecordError):
        raise
    except Exception as error:
        if not is_remote(path):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot read or write {path}: {reason}; check the network and the credentials (`gcloud auth "
                        "application-default login`), or use a local data.cache_dir") from None
