"""Data and cache paths that may be local or remote (`gs://bucket/...`), through etils.epath as tfds reads them.

A local path (no `scheme://`) is a pathlib.Path, so memory maps and `flock` work on it; any other is an
epath.Path, which reads and writes gs:// (and the other schemes epath knows) but cannot be memory-mapped or
locked: uint8 caches are read from a local copy (data.local_cache_dir, scaling.data.staging).
"""

from __future__ import annotations

import os
from pathlib import Path

from etils import epath


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` names a remote store (`gs://...`, any `scheme://`) rather than a local file."""
    return "://" in os.fspath(path)


def as_path(path: str | os.PathLike) -> Path | epath.Path:
    """`path` as a pathlib.Path when local (`~` expanded), else as an epath.Path (which keeps `gs://`)."""
    return epath.Path(path) if is_remote(path) else Path(os.path.expanduser(os.fspath(path)))


def size_of(path: Path | epath.Path) -> int:
    """Bytes of the file at `path` (local or remote)."""
    return os.stat(path).st_size if isinstance(path, Path) else epath.Path(path).stat().length
