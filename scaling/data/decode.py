"""Host-side image decoding: the centre crop every cached or evaluated image goes through, and the
random-resized (inception) crop of the streaming training path.

Both are TensorFlow graph functions of one encoded image, run in parallel by tf.data. TensorFlow is
imported inside them, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Inception crop (Szegedy et al. 2015, as in the TF-slim and big_vision ImageNet recipes).
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
MAX_ATTEMPTS = 10


def _resize(image, resolution: int):
    import tensorflow as tf

    image = tf.image.resize(image, (resolution, resolution), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def center_crop(data, channels: int, resolution: int | None, crop_fraction: float = 1.0):
    """Decodes one image; if `resolution` is set, crops the central square (its side `crop_fraction` of the
    short side) and resizes it to resolution x resolution. Images already at that size are left untouched."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    if resolution is None:
        return image
    shape = tf.shape(image)
    short = tf.minimum(shape[0], shape[1])
    side = tf.cast(tf.round(tf.cast(short, tf.float32) * crop_fraction), tf.int32)
    cropped = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)
    already = tf.logical_and(tf.equal(side, resolution), tf.equal(shape[0], shape[1]))
    return tf.cond(already, lambda: image, lambda: _resize(cropped, resolution))


def inception_crop(data, seed, channels: int, resolution: int, min_area: float):
    """Decodes the random-resized crop of one image chosen by the stateless `seed` (int32 [2]), resized to
    resolution x resolution. JPEGs decode only the crop window."""
    import tensorflow as tf

    def sample(shape):
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
            area_range=(min_area, 1.0), aspect_ratio_range=ASPECT_RATIO_RANGE, max_attempts=MAX_ATTEMPTS,
            min_object_covered=0.0, use_image_if_no_bounding_boxes=True,
        )
        return begin, size

    def crop_jpeg():
        begin, size = sample(tf.image.extract_jpeg_shape(data))
        return tf.io.decode_and_crop_jpeg(data, tf.stack([begin[0], begin[1], size[0], size[1]]), channels=channels)

    def crop_other():
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        return tf.slice(image, *sample(tf.shape(image)))

    crop = tf.cond(tf.io.is_jpeg(data), crop_jpeg, crop_other)
    return _resize(crop, resolution)


def decode_batch(
    encoded: Sequence[bytes], channels: int, resolution: int | None, crop_fraction: float = 1.0
) -> np.ndarray | list[np.ndarray]:
    """Centre-crops (see `center_crop`) a list of encoded images in parallel; a stacked uint8 array when they
    share a size, else a list."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(list(encoded), dtype=tf.string)).map(
        lambda data: center_crop(data, channels, resolution, crop_fraction),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
    )
    images = list(ds.as_numpy_iterator())
    if len({image.shape for image in images}) <= 1:
        return np.stack(images) if images else np.empty((0, resolution or 0, resolution or 0, channels), np.uint8)
    return images
