"""Items of an iterator built ahead of use on a background thread (the training loop's next batches, placed on
the devices while the current step runs), in order, with the producer's exceptions re-raised in the consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.05  # how often a producer blocked on a full queue checks whether it should stop


class _Failure:
    """The producer's exception, carried to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class Prefetcher(Generic[T]):
    """Iterates over `items`, whose next `depth` items are built by a background thread ahead of use.

    The items come in their order. An exception raised by `items` is raised by `next` (with its traceback from
    the producer); `close` (also on leaving a `with` block) stops the thread without waiting for `items` to end.
    """

    def __init__(self, items: Iterator[T], depth: int = 2):
        self._items, self._queue = items, queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as error:  # every failure goes to the consumer
            self._put(_Failure(error))
            return
        self._put(_END)

    def _put(self, item: object) -> bool:
        """Queue `item` once there is room; False if asked to stop first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # later calls end too
            raise StopIteration
        if isinstance(item, _Failure):
            self._queue.put(item)
            raise item.error
        return item

    def close(self) -> None:
        """Stop the producer and wait for its thread to end (it finishes the item it is building)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
        self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
