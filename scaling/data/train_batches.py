"""Training batches for one process: gathered from the uint8 cache, or streamed (decode + crop on the host).

Both paths produce the batch of step s from `batch_indices(N, batch, seed, s)` over the first N
examples of the run's training order, and each JAX process takes only its contiguous share of
that global batch (the share `jax.make_array_from_process_local_data` expects). So the data
position is a function of (seed, step): a resumed or rescheduled run, on any number of hosts,
sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import numpy as np

from scaling.data.batches import batch_indices
from scaling.data.source import feature_keys, records_at

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

Batch = tuple[np.ndarray, np.ndarray]  # uint8 images [b, H, W, C], int32 labels [b]


def local_share(global_batch: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
    """Process `process_index`'s contiguous share of a global batch's rows."""
    return np.array_split(global_batch, process_count)[process_index]


class TrainBatches(Protocol):
    """A process's training batches, by step."""

    def local_batch(self, step: int) -> Batch:
        """This process's share of step `step`'s batch."""

    def iterate(self, start_step: int) -> Iterator[Batch]:
        """Local batches of steps start_step, start_step + 1, ... (prefetched where the path allows)."""


class CachedBatches:
    """Batches gathered by index from cached images (rows = the training order's first N)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 process_index: int = 0, process_count: int = 1):
        self.images, self.labels, self.batch_size, self.seed = images, labels, batch_size, seed
        self.process_index, self.process_count = process_index, process_count

    def local_batch(self, step: int) -> Batch:
        positions = local_share(batch_indices(len(self.labels), self.batch_size, self.seed, step),
                                self.process_index, self.process_count)
        return self.images[positions], self.labels[positions]

    def iterate(self, start_step: int) -> Iterator[Batch]:
        step = start_step
        while True:
            yield self.local_batch(step)
            step += 1


class StreamingBatches:
    """Batches decoded from the tfds records at every step, in parallel on the host (tf.data).

    Training images are random-resized crops (`min_area` set) or centre crops (`min_area` None) of the
    full-resolution record, resized to `resolution`. The crop of the example at global batch position p
    of step s is seeded by (seed, s * batch_size + p), so it does not depend on the number of processes.
    Needs random access to the records: datasets stored as array_record.
    """

    def __init__(self, builder: tfds.core.DatasetBuilder, split: str, order: np.ndarray, labels: np.ndarray,
                 batch_size: int, seed: int, resolution: int, channels: int, min_area: float | None,
                 process_index: int = 0, process_count: int = 1):
        import tensorflow_datasets as tfds

        self.image_key = feature_keys(builder)[0]
        self.builder, self.split = builder, split
        self.source = builder.as_data_source(split, decoders={self.image_key: tfds.decode.SkipDecoding()})
        self.order, self.labels, self.batch_size, self.seed = order, labels, batch_size, seed
        self.resolution, self.channels, self.min_area = resolution, channels, min_area
        self.process_index, self.process_count = process_index, process_count

    def _encoded(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This process's encoded images, crop seeds and labels of step `step`."""
        global_positions = batch_indices(len(self.labels), self.batch_size, self.seed, step)
        slots = local_share(np.arange(self.batch_size), self.process_index, self.process_count)
        positions = global_positions[slots]
        records = records_at(self.builder, self.split, self.source, self.order[positions])
        seeds = np.stack([np.full(len(slots), self.seed), step * self.batch_size + slots], 1).astype(np.int32)
        encoded = np.array([record[self.image_key] for record in records], dtype=object)
        return encoded, seeds, self.labels[positions].astype(np.int32)

    def _dataset(self, start_step: int):
        import tensorflow as tf

        from scaling.data.decode import center_crop, inception_crop

        def steps():
            step = start_step
            while True:
                yield self._encoded(step)
                step += 1

        signature = (tf.TensorSpec((None,), tf.string), tf.TensorSpec((None, 2), tf.int32),
                     tf.TensorSpec((None,), tf.int32))
        if self.min_area is None:
            def decode(data, seed, label):
                return center_crop(data, self.channels, self.resolution), label
        else:
            def decode(data, seed, label):
                return inception_crop(data, seed, self.channels, self.resolution, self.min_area), label
        local_size = len(local_share(np.arange(self.batch_size), self.process_index, self.process_count))
        return (
            tf.data.Dataset.from_generator(steps, output_signature=signature)
            .prefetch(2)  # records of the next steps are read while this one decodes
            .unbatch()
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(local_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def local_batch(self, step: int) -> Batch:
        return next(self.iterate(step))

    def iterate(self, start_step: int) -> Iterator[Batch]:
        for images, labels in self._dataset(start_step).as_numpy_iterator():
            yield images.reshape(len(labels), self.resolution, self.resolution, self.channels), labels
