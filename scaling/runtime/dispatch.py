"""How far the host may run ahead of the devices: a few programs queued, never dozens.

JAX dispatches asynchronously, so a loop of jitted calls queues programs as fast as the host can issue them. A
few queued programs keep a device busy while the host prepares the next; more hide nothing and hold their inputs
in memory. Unbounded, XLA's CPU client can deadlock: each device admits at most 32 queued programs, launches
that find a queue full wait for room in whatever order its thread pool runs them, and a program's collective then
waits for a peer device whose launch of it waits behind the programs that follow (seen with 8 virtual CPU
devices, the train step's gradient all-reduce hanging; XLA aborts the process after 40 s of such waiting).
"""

from __future__ import annotations

import collections
from typing import Any

import jax

QUEUE_DEPTH = 4  # programs a loop may have queued ahead of the one that runs


class DispatchThrottle:
    """Keeps at most `depth` programs of a loop queued: after each dispatch, waits for the outputs of the program
    dispatched `depth` calls earlier (outputs not donated to a later call)."""

    def __init__(self, depth: int = QUEUE_DEPTH):
        self.depth = depth
        self._queued: collections.deque[Any] = collections.deque()

    def dispatched(self, outputs: Any) -> None:
        """Note a dispatched program by (some of) its outputs; wait for the oldest when too many are queued."""
        self._queued.append(outputs)
        if len(self._queued) > self.depth:
            jax.block_until_ready(self._queued.popleft())
