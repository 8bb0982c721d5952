"""The data package: the embedded digits tfds dataset, reading, subsets, batch order."""

import numpy as np
import pytest

from scaling.data import (
    EMBEDDED_DATASETS,
    DatasetFacts,
    Examples,
    batch_indices,
    class_balanced_order,
    dataset_facts,
    nested_subset,
    open_builder,
    prepare_embedded,
    read_examples,
    read_labels,
)
from scaling.errors import ConfigError, DataError


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
def train_all(digits):
    return read_examples(digits, "train", None, None)


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


def test_read_all_examples(train_all, train_labels, digits):
    assert isinstance(train_all, Examples)
    assert train_all.images.dtype == np.uint8 and train_all.images.shape == (1437, 8, 8, 1)
    assert train_all.labels.dtype == np.int32
    np.testing.assert_array_equal(train_all.labels, train_labels)
    assert train_all.images.max() == 255 and train_all.images.min() == 0
    # Labels are read in the same (deterministic) file order each time.
    np.testing.assert_array_equal(read_labels(digits, "train"), train_labels)


def test_images_match_the_sklearn_digits(train_all):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    expected = np.rint(bunch.images * 255 / 16).astype(np.uint8)[..., None]
    # Every stored image is one of the originals with the same label.
    lookup = {(im.tobytes()): int(y) for im, y in zip(expected, bunch.target)}
    hits = [lookup.get(im.tobytes()) == int(y) for im, y in zip(train_all.images, train_all.labels)]
    assert np.mean(hits) > 0.99  # a few duplicate images across classes are possible


def test_read_examples_follows_requested_order(digits, train_all):
    indices = np.array([1000, 3, 57, 3, 0, 1436])
    part = read_examples(digits, "train", indices, None)
    assert part.images.shape == (6, 8, 8, 1)
    np.testing.assert_array_equal(part.images, train_all.images[indices])
    np.testing.assert_array_equal(part.labels, train_all.labels[indices])
    empty = read_examples(digits, "train", np.array([], np.int64), None)
    assert empty.images.shape == (0, 8, 8, 1) and empty.labels.shape == (0,)
    with pytest.raises(IndexError):
        read_examples(digits, "train", np.array([1437]), None)


def test_resize_to_resolution(digits, train_all):
    indices = np.array([5, 2, 9])
    big = read_examples(digits, "train", indices, 16)
    assert big.images.shape == (3, 16, 16, 1) and big.images.dtype == np.uint8
    np.testing.assert_array_equal(big.labels, train_all.labels[indices])
    # Upsampling keeps the picture: block means track the 8x8 originals.
    blocks = big.images[..., 0].reshape(3, 8, 2, 8, 2).astype(float).mean(axis=(2, 4))
    original = train_all.images[indices, ..., 0].astype(float)
    assert np.corrcoef(blocks.ravel(), original.ravel())[0, 1] > 0.95
    same = read_examples(digits, "train", indices, 8)
    np.testing.assert_array_equal(same.images, train_all.images[indices])


def test_tfrecord_files_read_the_same(digits_tfrecord, train_all):
    assert "tfrecord" in str(digits_tfrecord.info.file_format).lower()
    np.testing.assert_array_equal(read_labels(digits_tfrecord, "train"), train_all.labels)
    indices = np.array([1000, 3, 57, 3, 0])
    part = read_examples(digits_tfrecord, "train", indices, None)
    np.testing.assert_array_equal(part.images, train_all.images[indices])
    np.testing.assert_array_equal(part.labels, train_all.labels[indices])
    assert read_examples(digits_tfrecord, "train", indices[:2], 16).images.shape == (2, 16, 16, 1)


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
    small = nested_subset(train_labels, 200, seed=3)
    large = nested_subset(train_labels, 400, seed=3)
    np.testing.assert_array_equal(large[:200], small)
    assert len(set(large.tolist())) == 400
    smallest_class = np.bincount(train_labels).min()
    for n in (1, 10, 15, 200, 400, 10 * smallest_class):
        counts = np.bincount(train_labels[nested_subset(train_labels, n, seed=3)], minlength=10)
        assert counts.max() - counts.min() <= 1, (n, counts)
    assert len(nested_subset(train_labels, None, seed=3)) == len(train_labels)


def test_order_skips_exhausted_classes():
    labels = np.array([0] * 2 + [1] * 5 + [2] * 3)
    order = class_balanced_order(labels, seed=0)
    np.testing.assert_array_equal(np.sort(order), np.arange(10))
    first_six = np.bincount(labels[order[:6]], minlength=3)
    np.testing.assert_array_equal(first_six, [2, 2, 2])
    np.testing.assert_array_equal(np.bincount(labels[order[:8]], minlength=3), [2, 3, 3])


def test_nested_subset_rejects_bad_sizes(train_labels):
    with pytest.raises(ConfigError, match=r"data\.train_examples.*1437"):
        nested_subset(train_labels, 1438, seed=0)
    with pytest.raises(ConfigError, match=r"data\.train_examples"):
        nested_subset(train_labels, 0, seed=0)


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
