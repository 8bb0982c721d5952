"""On-device augmentation: inception crop, flip, RandAugment ops, mixup, determinism, config checks."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from scaling.config.defaults import FIELDS
from scaling.data.augment import OPS, Augment, apply_op, augment_images, mixup
from scaling.errors import ConfigError
from scaling.schema import check_fields

ALL_ON = Augment(inception_crop=True, flip=True, randaugment_ops=2)
augment_jit = jax.jit(augment_images, static_argnames=("augment", "size"))


def random_images(shape=(8, 16, 16, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def test_everything_off_returns_the_images_as_float():
    images = random_images()
    out = augment_jit(jax.random.key(0), images, Augment())
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, images.astype(np.float32))
    assert not Augment().active and ALL_ON.active and Augment(mixup_alpha=0.2).active


def test_flip_mirrors_about_half_the_images():
    images = random_images((64, 8, 8, 3))
    out = np.asarray(augment_jit(jax.random.key(1), images, Augment(flip=True)))
    same = (out == images).all(axis=(1, 2, 3))
    mirrored = (out == images[:, :, ::-1]).all(axis=(1, 2, 3))
    assert (same ^ mirrored).all()
    assert 16 <= mirrored.sum() <= 48


def test_inception_crop_keeps_constant_and_monotone_grayscale_images():
    constant = np.full((8, 16, 16, 1), 77, np.uint8)
    gradient = np.broadcast_to((np.arange(16) * 16)[None, None, :, None], (8, 16, 16, 1)).astype(np.uint8)
    out = np.asarray(augment_jit(jax.random.key(2), np.concatenate([constant, gradient]),
                                 Augment(inception_crop=True), 12))
    assert out.shape == (16, 12, 12, 1)
    np.testing.assert_allclose(out[:8], 77, atol=1e-3)
    assert (np.diff(out[8:], axis=2) >= -1e-3).all()  # still non-decreasing along each row
    assert not np.allclose(out[8:], out[8])  # crops differ across examples


def test_inception_crop_of_the_whole_area_is_the_image():
    images = random_images((8, 16, 16, 1))
    out = augment_jit(jax.random.key(3), images, Augment(inception_crop=True, min_area=1.0))
    np.testing.assert_allclose(out, images, atol=1e-3)


def test_everything_on_gives_the_output_size_in_range():
    out = augment_jit(jax.random.key(4), random_images(), ALL_ON, 12)
    assert out.shape == (8, 12, 12, 3) and out.dtype == jnp.float32
    assert out.min() >= 0 and out.max() <= 255


def test_same_key_same_output_and_examples_are_independent():
    images = np.repeat(random_images((1, 16, 16, 3)), 8, axis=0)
    first = augment_jit(jax.random.key(5), images, ALL_ON, 12)
    np.testing.assert_array_equal(first, augment_jit(jax.random.key(5), images, ALL_ON, 12))
    assert not np.allclose(first, augment_jit(jax.random.key(6), images, ALL_ON, 12))
    assert not np.allclose(first[0], first[1])  # identical inputs, different per-example keys


def test_sharded_batch_gives_the_unsharded_result():
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    images = random_images()
    sharded = jax.device_put(images, NamedSharding(mesh, P("data")))
    expected = augment_jit(jax.random.key(7), images, ALL_ON, 12)
    actual = augment_jit(jax.random.key(7), sharded, ALL_ON, 12)
    assert actual.sharding.spec == P("data")
    np.testing.assert_allclose(actual, expected, atol=1e-3)


def test_mixup_mixes_images_and_labels_convexly():
    images = random_images().astype(np.float32)
    labels = jnp.arange(8)
    mixed, soft = jax.jit(mixup, static_argnums=(3, 4))(jax.random.key(8), images, labels, 10, 0.4)
    np.testing.assert_allclose(soft.sum(axis=1), 1, rtol=1e-6)
    weight = float(soft[0, 0])
    assert 0 < weight < 1
    np.testing.assert_allclose(soft[:, labels], weight * np.eye(8) + (1 - weight) * np.eye(8)[::-1], atol=1e-6)
    np.testing.assert_allclose(mixed, weight * images + (1 - weight) * images[::-1], rtol=1e-5, atol=1e-3)

    unmixed, one_hot = mixup(jax.random.key(8), images, labels, 10, alpha=0.0)
    np.testing.assert_array_equal(unmixed, images)
    np.testing.assert_array_equal(one_hot, jax.nn.one_hot(labels, 10))


@functools.cache
def all_ops(magnitude: float, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Every op, with sign +1 and -1, on one low-contrast image: ([2, len(OPS), 16, 16, channels], the image)."""
    image = jnp.asarray(np.random.default_rng(9).integers(40, 200, (16, 16, channels)), jnp.float32)
    each_op = jax.vmap(lambda op, sign: apply_op(image, op, magnitude, sign), in_axes=(0, None))
    outs = jax.jit(jax.vmap(each_op, in_axes=(None, 0)))(jnp.arange(len(OPS)), jnp.array([1.0, -1.0]))
    return np.asarray(outs), np.asarray(image)


@pytest.mark.parametrize("name", OPS)
def test_randaugment_op_is_identity_at_magnitude_zero_and_changes_at_ten(name):
    outs, image = all_ops(0.0)
    if name not in ("autocontrast", "equalize"):  # the two ops without a magnitude
        np.testing.assert_allclose(outs[:, OPS.index(name)], np.stack([image, image]), atol=1e-4)
    outs, image = all_ops(10.0)
    for out in outs[:, OPS.index(name)]:
        assert out.min() >= 0 and out.max() <= 255
        if name != "identity":
            assert np.abs(out - image).max() > 1, name


def test_randaugment_ops_work_on_grayscale():
    outs, image = all_ops(10.0, channels=1)
    assert outs.shape == (2, len(OPS), 16, 16, 1)
    assert outs.min() >= 0 and outs.max() <= 255
    np.testing.assert_array_equal(outs[:, OPS.index("color")], np.stack([image, image]))  # no colour to change
    assert np.abs(outs[:, OPS.index("contrast")] - image).max() > 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("min_area", 0.0),
        ("min_area", 1.5),
        ("randaugment_ops", -1),
        ("randaugment_ops", 1.5),
        ("randaugment_magnitude", -1.0),
        ("randaugment_magnitude", 11.0),
        ("mixup_alpha", -0.1),
        ("mixup_alpha", float("nan")),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(field, value):
    """The config schema's rules for data.augment.* (checked with the whole config before anything compiles)."""
    defaults = dataclasses.asdict(Augment())
    with pytest.raises(ConfigError, match=f"data.augment.{field}"):
        check_fields({**defaults, field: value}, FIELDS, under="data.augment.")
    check_fields(defaults, FIELDS, under="data.augment.")
