"""`scaling bench data`: images per second of each input path, next to what the model consumes, against a
plain tf.data decode-crop-batch pipeline on the same files (measured in the same run; the synthetic dataset, which
has no files, only through the cache path)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import ml_collections

from scaling.data.pipeline import open_run_data
from scaling.data.source import feature_keys, is_random_access, open_builder
from scaling.data.synthetic import SyntheticDataset


def images_per_second(batches: Iterator, batch_size: int, steps: int) -> float:
    """Throughput of `steps` batches after one warm-up batch."""
    next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * batch_size / (time.perf_counter() - start)


def reference_pipeline(config: ml_collections.ConfigDict, size: int) -> Iterator:
    """The textbook tf.data input: read records in order, decode, random crop (area 0.08-1), resize, batch."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    data = config.data
    builder = open_builder(data.name, data.data_dir)
    image_key, label_key = feature_keys(builder)
    skip = {image_key: tfds.decode.SkipDecoding()}
    if is_random_access(builder):  # tf.data cannot read array_record: iterate the data source in order
        source = builder.as_data_source(data.train_split, decoders=skip)
        records = tf.data.Dataset.from_generator(
            lambda: ((source[i][image_key], source[i][label_key]) for i in range(len(source))),
            output_signature=(tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int64)))
    else:
        records = builder.as_dataset(split=data.train_split, decoders=skip).map(
            lambda ex: (ex[image_key], ex[label_key]))
    channels = builder.info.features[image_key].shape[-1] or 3

    def decode_crop(encoded, label):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        shape = tf.shape(image)
        begin, crop, _ = tf.image.sample_distorted_bounding_box(
            shape, tf.zeros((1, 0, 4)), area_range=(0.08, 1.0), min_object_covered=0.0,
            use_image_if_no_bounding_boxes=True)
        image = tf.image.resize(tf.slice(image, begin, crop), (size, size))
        return tf.cast(image, tf.uint8), label

    dataset = (records.repeat().map(decode_crop, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(config.train.batch_size).prefetch(tf.data.AUTOTUNE))
    return dataset.as_numpy_iterator()


def bench_data(
    config: ml_collections.ConfigDict, steps: int, model_rate: Callable[[], float]
) -> list[tuple[str, float]]:
    """(path, images/s) for the cache, the streaming path, the model's consumption and the tf.data reference (the
    synthetic dataset: its in-memory images through the cache path, and the model)."""
    from scaling.plan import plan_run

    plan = plan_run(config)
    builder = plan.builder
    files = not isinstance(builder, SyntheticDataset)
    batch = config.train.batch_size
    rows = []
    cache = open_run_data(config, builder, plan.facts, plan.selection)  # builds the cache (not timed)
    rows.append(("cache (uint8 memmap gather)" if files else "synthetic (uint8 in-memory gather)",
                 images_per_second(cache.train.iterate(0), batch, steps)))
    if files and is_random_access(builder) and config.data.resolution:
        stream_config = config.copy_and_resolve_references()
        with stream_config.unlocked():
            stream_config.data.pipeline, stream_config.data.augment.inception_crop = "stream", True
        stream = open_run_data(stream_config, builder, plan.facts, plan.selection)
        rows.append(("stream (decode + inception crop)", images_per_second(stream.train.iterate(0), batch, steps)))
    if files:
        rows.append(("tf.data reference (decode, crop)",
                     images_per_second(reference_pipeline(config, plan.facts.image_shape[0]), batch, steps)))
    rows.append(("model train step consumes", model_rate()))
    return rows

