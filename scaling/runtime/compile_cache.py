"""JAX's persistent compilation cache, pointed at the config's folder, and how often it was hit.

The folder is bounded: when a run starts, the least recently used files (by access or modification time) are
deleted until the folder holds at most 4 GB, or $SCALING_COMPILATION_CACHE_MAX_GB GB (XLA's autotuning
files in subfolders included). So a sweep of many models keeps at most the bound plus what its runs in flight
compile. (JAX's own bound, jax_compilation_cache_max_size, is not used: it needs the `filelock` package, and it
fails every write to a folder holding entries that an unbounded process wrote.)
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

from scaling.errors import ConfigError
from scaling.runtime.devices import cache_dir

MAX_SIZE_ENV = "SCALING_COMPILATION_CACHE_MAX_GB"
DEFAULT_MAX_GB = 4.0

_EVENTS = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "misses"}
_counts: collections.Counter = collections.Counter()
_listening = False


def _count(event: str, **_: object) -> None:
    if event in _EVENTS:
        _counts[_EVENTS[event]] += 1


@contextlib.contextmanager
def persistent_compilation_cache(directory: str | None) -> Iterator[Callable[[], dict[str, int]]]:
    """Compile through the cache in `directory` inside the block; yields a function that counts the
    block's cache hits and misses so far.

    None keeps a folder the environment already set (JAX_COMPILATION_CACHE_DIR), else uses
    ~/.cache/imagenet-scaling/xla. The folder is first pruned to its bound (`max_cache_bytes`). Every program
    is cached however fast it compiled, so a resumed or repeated run compiles nothing. The previous folder is
    restored afterwards.
    """
    global _listening
    if not _listening:
        jax.monitoring.register_event_listener(_count)
        _listening = True
    previous = jax.config.jax_compilation_cache_dir
    previous_min_time = jax.config.jax_persistent_cache_min_compile_time_secs
    path = directory or previous or str(cache_dir() / "xla")
    _prune(Path(path), max_cache_bytes())
    if path != previous:
        compilation_cache.set_cache_dir(path)
        compilation_cache.reset_cache()
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    before = _counts.copy()
    try:
        yield lambda: {key: _counts[key] - before[key] for key in _EVENTS.values()}
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", previous_min_time)
        if path != previous:
            compilation_cache.set_cache_dir(previous)
            compilation_cache.reset_cache()


def max_cache_bytes() -> int:
    """The bound on the cache folder, in bytes: $SCALING_COMPILATION_CACHE_MAX_GB GB (10^9 bytes), else 4 GB."""
    text = os.environ.get(MAX_SIZE_ENV, "")
    try:
        gigabytes = float(text) if text else DEFAULT_MAX_GB
    except ValueError:
        gigabytes = math.nan
    if not 0 < gigabytes < math.inf:
        raise ConfigError(f"{MAX_SIZE_ENV}={text!r} is not a positive number of GB: set it to e.g. 4 (the bound "
                          f"on the compilation cache folder), or unset it for {DEFAULT_MAX_GB:g} GB")
    return int(gigabytes * 1e9)


def _prune(directory: Path, max_bytes: int) -> None:
    """Delete the least recently used files under `directory` (by access or modification time) until the rest
    hold at most `max_bytes`. Files another process deletes meanwhile are skipped; a file this process may not
    delete stops the pruning with a warning."""
    entries = []
    for folder, _, names in os.walk(directory):
        for path in (os.path.join(folder, name) for name in names):
            with contextlib.suppress(FileNotFoundError):
                stat = os.lstat(path)
                entries.append((max(stat.st_atime, stat.st_mtime), stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            print(f"warning: cannot delete {path} to keep the compilation cache under {max_bytes / 1e9:g} GB "
                  f"({error.strerror}): make {directory} writable, or set train.compilation_cache_dir to a folder "
                  "of your own", file=sys.stderr)
            return
        total -= size
