"""The data package: the embedded digits tfds dataset, decoding into the uint8 cache, subsets, batch order."""

from pathlib import Path

import numpy as np
import pytest

from scaling.data import DatasetFacts, dataset_facts, open_builder
from scaling.data.batches import batch_indices
from scaling.data.cache import cached_images
from scaling.data.selection import select
from scaling.data.source import EMBEDDED_DATASETS, decoded_images, prepare_embedded, read_labels
from scaling.data.subsets import class_balanced_order
from scaling.errors import ConfigError, DataError

TRAIN_SIZE = 1437


def cached(builder, order, root: Path, resolution: int | None = None, rows: int | None = None) -> np.ndarray:
    """The first `rows` (default: all) training images in `order`, through the sweep's uint8 cache."""
    side = resolution or 8
    rows = len(order) if rows is None else rows
    images = cached_images(builder, "train", np.asarray(order, np.int64), rows, (side, side, 1), resolution, 1.0,
                           root, quiet=True)
    return np.asarray(images)


def subset(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """The training examples of a run on `size` examples: the prefix of the selection's nested order."""
    selection = select(labels, 10, train_examples=size, seed=seed)
    return selection.train_order[: selection.train_examples]


@pytest.fixture(scope="module")
def digits(digits_data_dir):
    return open_builder("digits", digits_data_dir)


@pytest.fixture(scope="module")
def digits_tfrecord(tmp_path_factory):
    """The same dataset written as tfrecord, to check the as_dataset reading path."""
    data_dir = str(tmp_path_factory.mktemp("tfds_tfrecord"))
    prepare_embedded("digits", data_dir, file_format="tfrecord")
    return open_builder("digits", data_dir)


@pytest.fixture(scope="module")
def train_labels(digits):
    return read_labels(digits, "train")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scaling_cache")


@pytest.fixture(scope="module")
def train_all(digits, cache_root):
    """Every training image in file order."""
    return cached(digits, np.arange(TRAIN_SIZE), cache_root)


# --------------------------------------------------------------------------- builder


def test_digits_is_a_prepared_tfds_dataset(digits, digits_data_dir):
    assert "digits" in EMBEDDED_DATASETS
    assert digits.is_prepared()
    assert digits.name == "digits" and str(digits.version) == "1.0.0"
    info = digits.info
    assert info.splits["train"].num_examples + info.splits["test"].num_examples == 1797
    assert info.features["label"].num_classes == 10
    assert tuple(info.features["image"].shape) == (8, 8, 1)
    assert info.description and info.citation
    # Reopening reuses the prepared files.
    assert open_builder("digits", digits_data_dir).data_dir == digits.data_dir


def test_dataset_facts_reads_metadata(digits_data_dir):
    facts = dataset_facts("digits", digits_data_dir)
    assert isinstance(facts, DatasetFacts)
    assert facts.name == "digits" and facts.num_classes == 10
    assert facts.image_shape == (8, 8, 1)
    assert sum(facts.split_sizes.values()) == 1797
    assert set(facts.split_sizes) == {"train", "test"}
    assert dataset_facts("digits", digits_data_dir, resolution=16).image_shape == (16, 16, 1)


def test_splits_are_stratified(digits, train_labels):
    test_labels = read_labels(digits, "test")
    assert train_labels.dtype == np.int32 and test_labels.dtype == np.int32
    assert len(train_labels) + len(test_labels) == 1797
    train_counts = np.bincount(train_labels, minlength=10)
    test_counts = np.bincount(test_labels, minlength=10)
    assert (test_counts > 0).all()
    fraction = test_counts / (train_counts + test_counts)
    # Stratified 20% hold-out: every class within a rounding error of 20%.
    assert np.abs(fraction - 0.2).max() < 0.01, fraction


def test_decode_all_examples(train_all, train_labels, digits):
    assert train_all.dtype == np.uint8 and train_all.shape == (TRAIN_SIZE, 8, 8, 1)
    assert train_all.max() == 255 and train_all.min() == 0
    chunks = list(decoded_images(digits, "train", np.arange(TRAIN_SIZE), None))
    np.testing.assert_array_equal(np.concatenate([images for images, _ in chunks]), train_all)
    # The records decoded carry the labels read without decoding images, in the same file order.
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in chunks]), train_labels)
    # Labels are read in the same (deterministic) file order each time.
    np.testing.assert_array_equal(read_labels(digits, "train"), train_labels)


def test_images_match_the_sklearn_digits(train_all, train_labels):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    expected = np.rint(bunch.images * 255 / 16).astype(np.uint8)[..., None]
    # Every stored image is one of the originals with the same label.
    lookup = {(im.tobytes()): int(y) for im, y in zip(expected, bunch.target)}
    hits = [lookup.get(im.tobytes()) == int(y) for im, y in zip(train_all, train_labels)]
    assert np.mean(hits) > 0.99  # a few duplicate images across classes are possible


def test_cache_rows_follow_the_requested_order(digits, train_all, cache_root):
    order = np.array([1000, 3, 57, 0, 1436, 12])
    assert cached(digits, order, cache_root, rows=0).shape == (0, 8, 8, 1)
    for rows in (3, 6):  # the cache grows; its first rows stay those of the order's prefix
        part = cached(digits, order, cache_root, rows=rows)
        assert part.shape == (rows, 8, 8, 1) and part.dtype == np.uint8
        np.testing.assert_array_equal(part, train_all[order[:rows]])


def test_resize_to_resolution(digits, train_all, cache_root):
    indices = np.array([5, 2, 9])
    big = cached(digits, indices, cache_root, resolution=16)
    assert big.shape == (3, 16, 16, 1) and big.dtype == np.uint8
    # Upsampling keeps the picture: block means track the 8x8 originals.
    blocks = big[..., 0].reshape(3, 8, 2, 8, 2).astype(float).mean(axis=(2, 4))
    original = train_all[indices, ..., 0].astype(float)
    assert np.corrcoef(blocks.ravel(), original.ravel())[0, 1] > 0.95
    np.testing.assert_array_equal(cached(digits, indices, cache_root, resolution=8), train_all[indices])


def test_tfrecord_files_read_the_same(digits_tfrecord, train_all, train_labels, tmp_path):
    assert "tfrecord" in str(digits_tfrecord.info.file_format).lower()
    np.testing.assert_array_equal(read_labels(digits_tfrecord, "train"), train_labels)
    order = np.array([1000, 3, 57, 0])
    # A cache of its own: caches are keyed by dataset name and version, the same for both file formats.
    np.testing.assert_array_equal(cached(digits_tfrecord, order, tmp_path), train_all[order])
    assert cached(digits_tfrecord, order[:2], tmp_path, resolution=16).shape == (2, 16, 16, 1)


def test_unknown_split_names_the_splits(digits):
    with pytest.raises(DataError, match="train"):
        read_labels(digits, "validation")


# --------------------------------------------------------------------------- errors


def test_unknown_dataset_raises_data_error(tmp_path):
    with pytest.raises(DataError) as info:
        open_builder("no_such_dataset_xyz", str(tmp_path))
    message = str(info.value)
    assert "no_such_dataset_xyz" in message and "tfds.list_builders()" in message


def test_unprepared_dataset_raises_data_error_with_fix(tmp_path):
    with pytest.raises(DataError) as info:
        open_builder("mnist", str(tmp_path))
    message = str(info.value)
    assert "mnist" in message and str(tmp_path) in message
    assert f"scaling data prepare mnist --data-dir {tmp_path}" in message
    assert not (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").exists()  # nothing built


# --------------------------------------------------------------------------- subsets


def test_class_balanced_order_is_a_seeded_permutation(train_labels):
    order = class_balanced_order(train_labels, seed=0)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(train_labels)))
    np.testing.assert_array_equal(order, class_balanced_order(train_labels, seed=0))
    assert not np.array_equal(order, class_balanced_order(train_labels, seed=1))


def test_nested_subsets_are_nested_and_balanced(train_labels):
    small = subset(train_labels, 200, seed=3)
    large = subset(train_labels, 400, seed=3)
    np.testing.assert_array_equal(large[:200], small)
    assert len(set(large.tolist())) == 400
    smallest_class = np.bincount(train_labels).min()
    for n in (1, 10, 15, 200, 400, 10 * smallest_class):
        counts = np.bincount(train_labels[subset(train_labels, n, seed=3)], minlength=10)
        assert counts.max() - counts.min() <= 1, (n, counts)
    np.testing.assert_array_equal(np.sort(subset(train_labels, None, seed=3)), np.arange(len(train_labels)))


def test_order_skips_exhausted_classes():
    labels = np.array([0] * 2 + [1] * 5 + [2] * 3)
    order = class_balanced_order(labels, seed=0)
    np.testing.assert_array_equal(np.sort(order), np.arange(10))
    first_six = np.bincount(labels[order[:6]], minlength=3)
    np.testing.assert_array_equal(first_six, [2, 2, 2])
    np.testing.assert_array_equal(np.bincount(labels[order[:8]], minlength=3), [2, 3, 3])


def test_subset_rejects_bad_sizes(train_labels):
    with pytest.raises(ConfigError, match=r"data\.train_examples.*1437"):
        subset(train_labels, 1438, seed=0)
    with pytest.raises(ConfigError, match=r"data\.train_examples"):
        subset(train_labels, 0, seed=0)


# --------------------------------------------------------------------------- batches


@pytest.mark.parametrize("num_examples,batch_size", [(100, 10), (100, 32), (7, 3), (5, 12)])
def test_batches_cover_each_epoch_once(num_examples, batch_size):
    epochs = 3
    steps = -(-epochs * num_examples // batch_size)
    stream = np.concatenate([batch_indices(num_examples, batch_size, 0, s) for s in range(steps)])
    assert all(len(batch_indices(num_examples, batch_size, 0, s)) == batch_size for s in range(steps))
    assert stream.min() >= 0 and stream.max() < num_examples
    for e in range(epochs):
        epoch = stream[e * num_examples : (e + 1) * num_examples]
        np.testing.assert_array_equal(np.sort(epoch), np.arange(num_examples))
    # Epochs are reshuffled.
    assert not np.array_equal(stream[:num_examples], stream[num_examples : 2 * num_examples])


def test_batches_are_pure_functions_of_seed_and_step():
    first = [batch_indices(1437, 64, 5, s) for s in (0, 22, 23, 1000)]
    # Out of order and after other calls (resume): the same batches.
    batch_indices(1437, 64, 9, 4)
    again = [batch_indices(1437, 64, 5, s) for s in (1000, 23, 22, 0)][::-1]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(batch_indices(1437, 64, 5, 0), batch_indices(1437, 64, 6, 0))
    assert not np.array_equal(batch_indices(1437, 64, 5, 0), batch_indices(1437, 64, 5, 1))
