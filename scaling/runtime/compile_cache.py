"""JAX's persistent compilation cache, pointed at the config's folder, and how often it was hit."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator

import jax
from jax.experimental.compilation_cache import compilation_cache

from scaling.runtime.devices import cache_dir

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
    ~/.cache/imagenet-scaling/xla. Every program is cached however fast it compiled, so a resumed or
    repeated run compiles nothing. The previous folder is restored afterwards.
    """
    global _listening
    if not _listening:
        jax.monitoring.register_event_listener(_count)
        _listening = True
    previous = jax.config.jax_compilation_cache_dir
    previous_min_time = jax.config.jax_persistent_cache_min_compile_time_secs
    path = directory or previous or str(cache_dir() / "xla")
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
