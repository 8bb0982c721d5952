"""On-device augmentation: inception crop, flip, RandAugment ops and how they are dealt out, mixup, determinism,
sharding, config checks."""

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from scaling.config.defaults import FIELDS
from scaling.data.augment import OPS, Augment, apply_ops, augment_images, mixup
from scaling.errors import ConfigError
from scaling.schema import check_fields

ALL_ON = Augment(inception_crop=True, flip=True, randaugment_ops=2, randaugment_groups=8)  # 8 sub-batches of 1
augment_jit = jax.jit(augment_images, static_argnames=("augment", "size"))
ops_jit = jax.jit(apply_ops, static_argnums=2)


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


def test_sharded_batch_gives_the_unsharded_result_without_moving_images_between_devices():
    """With one RandAugment sub-batch per device, the compiled program has no collective at all."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    images = random_images()
    sharded = jax.device_put(images, NamedSharding(mesh, P("data")))
    expected = augment_jit(jax.random.key(7), images, ALL_ON, 12)
    compiled = augment_jit.lower(jax.random.key(7), sharded, ALL_ON, 12).compile()
    actual = compiled(jax.random.key(7), sharded)
    assert actual.sharding.spec == P("data")
    np.testing.assert_allclose(actual, expected, atol=1e-3)
    assert not re.findall(r"all-gather|all-to-all|collective-permute|all-reduce|reduce-scatter", compiled.as_text())


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


def every_op(image: np.ndarray | jax.Array, magnitude: float) -> np.ndarray:
    """Each op, with sign +1 and -1, on one float image alone: [len(OPS), 2, *image.shape]."""
    images = jnp.broadcast_to(jnp.asarray(image, jnp.float32), (len(OPS), 2, *image.shape))
    return np.asarray(ops_jit(images, jnp.tile(jnp.array([1.0, -1.0]), (len(OPS), 1)), magnitude))


@functools.cache
def all_ops(magnitude: float, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Every op, with sign +1 and -1, on one low-contrast image: ([2, len(OPS), 16, 16, channels], the image)."""
    image = np.random.default_rng(9).integers(40, 200, (16, 16, channels)).astype(np.float32)
    return every_op(image, magnitude).swapaxes(0, 1), image


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


def distinct_ops_images(count: int, seed: int) -> np.ndarray:
    """uint8 [count, 16, 16, 3] on which every op at magnitude 10 gives a different result: low contrast (40..199)
    with one pixel of 250 (a single top level, so that equalize acts on 256 pixels, as PIL's)."""
    images = np.random.default_rng(seed).integers(40, 200, (count, 16, 16, 3)).astype(np.uint8)
    images[:, 0, 0] = 250
    return images


def applied_ops(images: np.ndarray, outs: np.ndarray, magnitude: float) -> np.ndarray:
    """The index of the one op (either sign) that turns each image into its output (asserting there is one)."""
    ops = []
    for image, out in zip(images, outs, strict=True):
        matches = (np.abs(every_op(image, magnitude) - out) < 1e-3).all(axis=(2, 3, 4)).any(axis=1)
        assert matches.sum() == 1, "an output is none of the ops, or ops are not told apart"
        ops.append(matches.argmax())
    return np.array(ops)


def test_randaugment_deals_one_op_to_each_image_uniformly_at_the_cost_of_one_op():
    """42 sub-batches of 20, one layer at M = 10 (each op has 2 of the 14 x 2 slots of a sub-batch, 8 of them
    padding), 5 steps. In 10 sub-batches, every image got exactly one op (identified against each op on the image
    alone) and no op more than 2 images; the first and the last image of the 210 sub-batches each got every op about
    210 / 14 = 15 times. XLA counts the FLOPs of a pack of two (vmap over members) as each op on its 2 slots of
    2 x 42 sub-batches: every op on every image, as a per-image choice under vmap does, would be 20 times that."""
    images = distinct_ops_images(840, seed=12)
    augment = Augment(randaugment_ops=1, randaugment_magnitude=10.0, randaugment_groups=42)
    step = augment_jit.lower(jax.random.key(0), images, augment, None).compile()
    outs = np.stack([step(jax.random.key(seed), images) for seed in range(5)])
    firsts, lasts = [slice(position, None, 20) for position in (0, 19)]
    ops = applied_ops(np.concatenate([images[:200], np.tile(images[firsts], (5, 1, 1, 1)),
                                      np.tile(images[lasts], (5, 1, 1, 1))]),
                      np.concatenate([outs[0, :200], *outs[:, firsts], *outs[:, lasts]]), 10.0)
    shares = np.stack([np.bincount(sub_batch, minlength=len(OPS)) for sub_batch in ops[:200].reshape(10, 20)])
    assert shares.max() == 2 and (shares.sum(axis=1) == 20).all()
    for position_ops in ops[200:].reshape(2, 210):
        counts = np.bincount(position_ops, minlength=len(OPS))
        assert counts.min() >= 3 and counts.max() <= 32, counts  # binomial(210, 1/14): mean 15, sd 3.7

    pack = jax.jit(jax.vmap(lambda key, x: augment_images(key, x, augment)))
    pack_flops = pack.lower(jax.random.split(jax.random.key(0), 2), np.stack([images, images])).cost_analysis()
    slots_flops = ops_jit.lower(jnp.zeros((len(OPS), 2, *images.shape[1:])), jnp.ones((len(OPS), 2)), 10.0)
    each_op_on_its_slots = 2 * 42 * slots_flops.cost_analysis()["flops"]
    assert each_op_on_its_slots <= pack_flops["flops"] <= 1.5 * each_op_on_its_slots


def test_randaugment_groups_divide_the_batch():
    """Automatic: the most sub-batches of at least 128 images; a given number must divide the batch."""
    assert [Augment().groups(batch) for batch in (8, 128, 255, 256, 1000, 1024)] == [1, 1, 1, 2, 5, 8]
    assert Augment(randaugment_groups=4).groups(64) == 4
    with pytest.raises(ConfigError, match=r"data\.augment\.randaugment_groups=3 does not divide the batch of 64"):
        Augment(randaugment_groups=3).groups(64)


def test_bench_augment_prints_medians_against_no_augmentation_and_refuses_bad_settings(capsys):
    from scaling.cli import main
    from scaling.tools.augment_bench import AugmentBench, format_augment_bench

    bench = AugmentBench(["off", "crop", "randaugment"], [[100, 300, 200], [50, 60, 40], [25, 30, 20]],
                         [None, [900, 1000, 1100], [400, 600, 500]], (8, 8, 1), 128, "1 cpu")
    header, _, off, crop, randaugment = format_augment_bench(bench, "configs/resnet.py").splitlines()
    assert header.startswith("8x8x1 images, batch 128, configs/resnet.py, 1 cpu device(s), medians of 3 rounds")
    assert off.split() == ["off", "200", "1.000", "-"]
    assert crop.split() == ["crop", "50", "0.250", "1,000"]
    assert randaugment.split() == ["randaugment", "25", "0.125", "500"]

    assert main(["bench", "augment", "--ops", "0"]) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("error: ")] == [
        "error: --steps 20, --rounds 3, --ops 0, --magnitude 9: steps, rounds and ops must be at least 1 and the "
        "magnitude in 0..10"]
