"""The synthetic dataset (data.name=synthetic): defaults, determinism, balanced labels, learnable classes, and a run
reading it through the cache path with the usual class subset, minival and nested training subsets."""

import numpy as np
import pytest

from scaling.cli import main
from scaling.config.loading import load_config
from scaling.config.validation import validate_compute
from scaling.data.pipeline import open_run_data
from scaling.data.source import DatasetFacts
from scaling.data.synthetic import SyntheticDataset
from scaling.data.train_batches import CachedBatches
from scaling.errors import ConfigError
from scaling.plan import plan_run

TINY = "configs/resnet.py:width=4,depth=10"
RUN = ["data.name=synthetic", "train.epochs=None", "train.steps=2", "train.batch_size=16", "train.eval_batch_size=16",
       "wandb.mode=disabled"]
SMALL = ["data.resolution=8", "data.synthetic.classes=4", "data.synthetic.train_examples=64",
         "data.synthetic.eval_examples=40"]


def synthetic(*overrides: str) -> SyntheticDataset:
    return SyntheticDataset.from_config(load_config(TINY, [*RUN, *overrides]).data)


def test_defaults_are_224_pixel_rgb_images_of_1000_classes() -> None:
    config = load_config(TINY, RUN)
    assert config.data.resolution == 224 and config.data.normalization == "estimate"
    assert SyntheticDataset.from_config(config.data).facts == DatasetFacts(
        "synthetic", 1000, (224, 224, 3), {"train": 4096, "validation": 1024})


def test_images_are_deterministic_in_the_dataset_seed_split_and_row_with_balanced_labels() -> None:
    shape = ["data.resolution=12", "data.synthetic.classes=5", "data.synthetic.train_examples=52",
             "data.synthetic.eval_examples=20"]
    dataset = synthetic(*shape)
    labels = dataset.labels("train")
    assert sorted(np.bincount(labels, minlength=5)) == [10, 10, 10, 11, 11]  # 52 = 5 x 10 + 2
    assert list(np.bincount(dataset.labels("validation"), minlength=5)) == [4] * 5
    assert labels.tolist() != sorted(labels.tolist())  # a seeded order, not class by class
    images = dataset.images("train", np.arange(52))
    assert images.shape == (52, 12, 12, 3) and images.dtype == np.uint8
    again = synthetic(*shape)
    assert np.array_equal(again.labels("train"), labels)
    assert np.array_equal(again.images("train", np.arange(52)), images)
    assert np.array_equal(dataset.images("train", np.array([7, 3])), images[[7, 3]])  # a row is its own
    assert np.array_equal(synthetic(*shape, "data.seed=5").images("train", np.arange(52)), images)  # packable
    reseeded = synthetic(*shape, "data.synthetic.seed=1")
    assert not np.array_equal(reseeded.images("train", np.arange(52)), images)
    assert not np.array_equal(reseeded.labels("train"), labels)
    assert not np.array_equal(dataset.images("validation", np.arange(20)), images[:20])


def test_classes_are_learnable_by_their_mean_image() -> None:
    """Noise is independent per pixel and row, the class patterns differ: the training split's class means
    classify the validation images almost perfectly."""
    dataset = synthetic("data.resolution=8", "data.synthetic.classes=10", "data.synthetic.train_examples=300",
                        "data.synthetic.eval_examples=100")
    train = dataset.images("train", np.arange(300)).reshape(300, -1).astype(np.float64)
    means = np.stack([train[dataset.labels("train") == k].mean(0) for k in range(10)])
    colours = means.reshape(10, -1, 3).mean(1)
    assert min(np.abs(colours[i] - colours[j]).max() for i in range(10) for j in range(i)) > 1.0
    test = dataset.images("validation", np.arange(100)).reshape(100, -1).astype(np.float64)
    nearest = np.argmin(((test[:, None, :] - means[None]) ** 2).sum(-1), 1)
    assert (nearest == dataset.labels("validation")).mean() >= 0.95


def test_a_run_reads_class_subset_minival_and_nested_subsets_from_host_memory() -> None:
    def run_data(rows: int):
        config = load_config(TINY, [*RUN, *SMALL, "data.classes=3", "data.minival_per_class=2",
                                    f"data.train_examples={rows}"])
        plan = plan_run(config)
        return plan, open_run_data(config, plan.builder, plan.facts, plan.selection)

    plan, small = run_data(12)
    # 64 training rows = 16 per class; 3 classes chosen, 2 each held out: 42 to train on; validation: 10 per class
    assert len(plan.selection.train_order) == 42 and plan.facts.num_classes == 3
    assert isinstance(small.train, CachedBatches) and small.train.images.shape == (12, 8, 8, 3)
    assert small.eval_sets["eval"].images.shape == (30, 8, 8, 3) and small.eval_sets["eval"].images.dtype == np.uint8
    assert (small.eval_sets["eval"].targets.sum(1) == 1).all() and small.eval_sets["eval"].targets.shape == (30, 3)
    assert small.eval_sets["minival"].images.shape == (6, 8, 8, 3)
    _, large = run_data(24)
    assert np.array_equal(large.train.images[:12], small.train.images)  # the nested subset is a prefix
    assert set(large.train.labels.tolist()) == {0, 1, 2}


def test_streaming_and_extra_evaluation_sets_are_refused() -> None:
    config = load_config(TINY, [*RUN, *SMALL, "data.pipeline=stream"])
    with pytest.raises(ConfigError, match=r"nothing to stream\); use data.pipeline='cache'"):
        validate_compute(config, SyntheticDataset.from_config(config.data).facts)
    config = load_config(TINY, [*RUN[1:], "data.extra_eval=('synthetic',)"])  # digits, evaluated on synthetic too
    with pytest.raises(ConfigError, match="shares no label space"):
        validate_compute(config, DatasetFacts("digits", 10, (8, 8, 1), {}))


def test_describe_says_the_images_are_generated_in_memory_and_their_size(capsys) -> None:
    assert main(["data", "describe", "--config", TINY, *(f"--config.{item}" for item in RUN + SMALL)]) == 0
    out = capsys.readouterr().out
    assert "synthetic, generated in host memory" in out
    assert "train  64 x 8x8x3 = 12.3 kB" in out and "eval   40 x 8x8x3 = 7.7 kB" in out  # 64 * 192 = 12,288 bytes
    assert "(nothing on disk): 20.0 kB in all" in out  # (64 + 40) * 192 = 19,968 bytes
