"""Noticing a preemption (SIGTERM) so that training can checkpoint and stop at a step every process agrees on."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import jax
from jax.experimental import multihost_utils

_stop_requested = threading.Event()


def request_stop() -> None:
    """Ask this process's training to checkpoint and stop after its next step, as SIGTERM does.

    Safe in a signal handler. A request made before training starts is kept until it starts.
    """
    _stop_requested.set()


class PreemptionWatch:
    """A context in which SIGTERM (or `request_stop`) asks training to stop; `requested(step)` says whether now.

    In one process a SIGTERM handler sets a flag. Across processes (after `jax.distributed.initialize`)
    JAX's preemption service receives the signal on any host and picks the same step on all of them,
    so no Python handler is installed there. Leaving the context clears any request.
    """

    def __init__(self) -> None:
        self._previous = None

    def __enter__(self) -> PreemptionWatch:
        if not self._multi_process() and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._notice)
        return self

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        _stop_requested.clear()

    def _notice(self, signum: int, frame: FrameType | None) -> None:
        """Ask training to stop, and tell the handler this one replaced (e.g. a benchmark's), if it is Python's."""
        request_stop()
        if callable(self._previous):
            self._previous(signum, frame)

    @staticmethod
    def _multi_process() -> bool:
        return jax.process_count() > 1

    def requested(self, step: int) -> bool:
        """Whether to checkpoint and stop now that `step` is done (call it at every step, on every process)."""
        if self._multi_process():
            return multihost_utils.reached_preemption_sync_point(step)
        return _stop_requested.is_set()
