"""The ImageNet data layer on data the tests build: tfds' mock imagenet2012, and real JPEG files.

Covers class subsets, minival, nested subsets, the uint8 cache (also built by two processes at
once), the streaming path, per-process shards, and the errors for a missing ImageNet.
"""

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import mock_imagenet
from tiny_jpegs import NUM_CLASSES, SPLITS, build

from scaling.cli import main
from scaling.config.loading import load_config
from scaling.data import open_builder
from scaling.data.cache import cache_directory, cached_images
from scaling.data.pipeline import open_run_data
from scaling.data.selection import select
from scaling.errors import ConfigError, DataError
from scaling.plan import plan_run
from scaling.train import train_and_evaluate


@pytest.fixture(scope="module")
def jpeg_data_dir(tmp_path_factory) -> str:
    return build(tmp_path_factory.mktemp("jpegs"))


def jpeg_config(data_dir: str, *overrides: str):
    base = ["data.name=tiny_jpegs", f"data.data_dir={data_dir}", "data.resolution=16", "train.epochs=None",
            "train.steps=2", "train.batch_size=16", "train.eval_batch_size=16", "wandb.mode=disabled"]
    return load_config("configs/resnet.py:width=4,depth=10", [*base, *overrides])


def run_data(config, process_index: int = 0, process_count: int = 1):
    plan = plan_run(config)
    builder = open_builder(config.data.name, config.data.data_dir)
    return open_run_data(config, builder, plan.facts, plan.selection, process_index, process_count)


# ------------------------------------------------------------------ selection


def test_subsets_are_nested_and_class_balanced():
    labels = np.repeat(np.arange(10), 30)
    small = select(labels, 10, train_examples=40, seed=3)
    large = select(labels, 10, train_examples=80, seed=3)
    np.testing.assert_array_equal(large.train_order[:80][:40], small.train_order[:40])
    assert np.bincount(labels[small.train_order[:40]], minlength=10).tolist() == [4] * 10
    per_class = select(labels, 10, examples_per_class=5, seed=3)
    assert per_class.train_examples == 50
    assert np.bincount(labels[per_class.train_order[:50]], minlength=10).tolist() == [5] * 10


def test_class_subset_is_a_fixed_prefix_and_minival_is_disjoint():
    labels = np.repeat(np.arange(20), 12)
    five = select(labels, 20, classes=5, minival_per_class=2, seed=0)
    ten = select(labels, 20, classes=10, minival_per_class=2, seed=7)
    np.testing.assert_array_equal(ten.classes[:5], five.classes)  # first K of one fixed order, for every seed
    assert set(labels[five.train_order]) == set(five.classes)
    assert not set(five.minival) & set(five.train_order)
    assert np.bincount(labels[five.minival], minlength=20)[five.classes].tolist() == [2] * 5
    assert len(five.train_order) == 5 * 10
    np.testing.assert_array_equal(five.relabel(five.classes), np.arange(5))
    eval_labels = np.arange(20)
    assert sorted(five.relabel(eval_labels[five.eval_indices(eval_labels)])) == list(range(5))


def test_bad_selections_name_the_field():
    labels = np.repeat(np.arange(4), 5)
    with pytest.raises(ConfigError, match=r"data.minival_per_class"):
        select(labels, 4, minival_per_class=5)
    with pytest.raises(ConfigError, match=r"data.examples_per_class"):
        select(labels, 4, examples_per_class=6)
    with pytest.raises(ConfigError, match=r"data.train_examples"):
        select(labels, 4, classes=2, train_examples=11)
    with pytest.raises(ConfigError, match="not both"):
        select(labels, 4, train_examples=4, examples_per_class=1)


# ------------------------------------------------------------------ mock imagenet2012


def test_mock_imagenet2012_with_chosen_classes_missing_is_refused(tmp_path):
    # 96 mock examples cannot cover 400 classes: most chosen classes have no training examples. (The real
    # imagenet2012 builder, prepare, describe and training: tests/test_imagenet_prepare.py.)
    config = load_config("configs/resnet.py:width=4,depth=10", [
        "data.name=imagenet2012", f"data.data_dir={tmp_path}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.resolution=16", "data.classes=400", "train.epochs=None", "train.steps=2", "train.batch_size=8",
    ])
    assert config.data.eval_split is None  # imagenet2012 is evaluated on its validation split
    with mock_imagenet(96), pytest.raises(ConfigError, match=r"data.classes=400 \(the first 400 classes of the fixed "
                                                              r"class order\) selects 3\d\d classes without training"):
        plan_run(config)


def test_missing_imagenet_says_what_to_download_and_which_command(tmp_path, capsys):
    with pytest.raises(DataError) as info:
        open_builder("imagenet2012", str(tmp_path))
    message = str(info.value)
    for fact in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", f"{tmp_path}/downloads/manual",
                 f"scaling data prepare imagenet2012 --data-dir {tmp_path}", "image-net.org"):
        assert fact in message
    assert main(["data", "prepare", "imagenet2012", "--data-dir", str(tmp_path)]) == 2
    assert "missing ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in capsys.readouterr().err


# ------------------------------------------------------------------ real JPEGs: cache and streaming


def test_cache_and_stream_give_the_same_batches_without_augmentation(jpeg_data_dir):
    cached = run_data(jpeg_config(jpeg_data_dir, "data.train_examples=60"))
    streamed = run_data(jpeg_config(jpeg_data_dir, "data.train_examples=60", "data.pipeline=stream"))
    for step in (0, 3):
        (cache_images, cache_labels), (stream_images, stream_labels) = (
            cached.train.local_batch(step), streamed.train.local_batch(step)
        )
        np.testing.assert_array_equal(cache_labels, stream_labels)
        np.testing.assert_array_equal(cache_images, stream_images)
    assert cache_images.shape == (16, 16, 16, 3) and cache_images.std() > 10  # real, varied pixels


def test_two_processes_read_disjoint_shards_covering_the_batch(jpeg_data_dir):
    for pipeline in ("cache", "stream"):
        config = jpeg_config(jpeg_data_dir, f"data.pipeline={pipeline}", "data.augment.inception_crop=True")
        whole_images, whole_labels = run_data(config).train.local_batch(5)
        shards = [run_data(config, index, 2).train.local_batch(5) for index in range(2)]
        assert [len(labels) for _, labels in shards] == [8, 8]
        np.testing.assert_array_equal(np.concatenate([images for images, _ in shards]), whole_images)
        np.testing.assert_array_equal(np.concatenate([labels for _, labels in shards]), whole_labels)


def test_streaming_inception_crops_are_a_function_of_seed_and_step(jpeg_data_dir):
    config = jpeg_config(jpeg_data_dir, "data.pipeline=stream", "data.augment.inception_crop=True")
    train = run_data(config).train
    first, again = train.local_batch(2), next(iter(train.iterate(2)))
    np.testing.assert_array_equal(first[0], again[0])
    plain = run_data(jpeg_config(jpeg_data_dir, "data.pipeline=stream")).train.local_batch(2)
    np.testing.assert_array_equal(first[1], plain[1])
    assert not np.array_equal(first[0], plain[0])  # cropped differently from the central crop


def test_subset_grows_the_shared_cache_instead_of_rebuilding_it(jpeg_data_dir, tmp_path):
    cache = f"data.cache_dir={tmp_path}"
    run_data(jpeg_config(jpeg_data_dir, cache, "data.train_examples=30"))
    data = run_data(jpeg_config(jpeg_data_dir, cache, "data.train_examples=90"))
    train_dirs = list(tmp_path.rglob("train-16px-crop1-*"))
    assert len(train_dirs) == 1
    assert json.loads((train_dirs[0] / "meta.json").read_text())["builds"] == [[0, 30], [30, 90]]
    assert data.train.images.shape[0] == 90


def _build_cache(data_dir: str, root: str, order: list[int]) -> None:
    builder = open_builder("tiny_jpegs", data_dir)
    cached_images(builder, "train", np.array(order), len(order), (16, 16, 3), 16, 1.0, Path(root), quiet=True)


def test_two_processes_building_one_cache_build_it_once(jpeg_data_dir, tmp_path):
    order = list(range(SPLITS["train"] * NUM_CLASSES))[::-1]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_build_cache, args=(jpeg_data_dir, str(tmp_path), order)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    builder = open_builder("tiny_jpegs", jpeg_data_dir)
    directory = cache_directory(builder, "train", np.array(order), 16, 1.0, tmp_path)
    assert json.loads((directory / "meta.json").read_text())["builds"] == [[0, len(order)]]


def test_class_subset_minival_and_evaluation_on_real_jpegs(jpeg_data_dir):
    config = jpeg_config(jpeg_data_dir, "data.classes=4", "data.minival_per_class=3", "data.examples_per_class=10")
    data = run_data(config)
    minival, evaluation = data.eval_sets["minival"], data.eval_sets["eval"]
    assert minival.targets.sum(0).tolist() == [3] * 4 and minival.targets.sum(1).tolist() == [1] * 12
    assert evaluation.targets.sum(0).tolist() == [SPLITS["validation"]] * 4  # validation, chosen classes only
    assert minival.images.shape == (12, 16, 16, 3)
    assert not set(data.selection.minival) & set(data.selection.train_order)


def test_a_stream_run_with_augmentation_trains_and_records_minival_and_extra_eval(jpeg_data_dir, tmp_path):
    config = jpeg_config(jpeg_data_dir, "data.pipeline=stream", "data.augment.inception_crop=True",
                         "data.augment.flip=True", "data.augment.mixup_alpha=0.2", "data.minival_per_class=2",
                         "data.augment.randaugment_ops=1", "data.extra_eval=('tiny_jpegs',)")
    result = train_and_evaluate(config, tmp_path / "run")
    assert result.status == "completed" and result.step == 2
    assert 0.0 < result.mfu < 1.0 and result.examples_per_second > 0 and result.compute_dtype == "float32"  # auto
    # MFU against the CPU's reference peak whatever the compute dtype: the better of its float32 and bfloat16 probes
    cached = json.loads((Path(os.environ["SCALING_CACHE_DIR"]) / "cpu_peak.json").read_text())
    probes = {key.rsplit(" | ", 1)[1]: peak for key, peak in cached.items()
              if f"| {result.num_devices} devices |" in key}
    assert probes.keys() == {"float32", "bfloat16"}
    assert result.mfu == pytest.approx(
        result.flops_per_example * result.examples_per_second / (result.num_devices * max(probes.values())))
    assert 0.0 <= result.final_eval["minival_error"] <= 1.0
    assert result.final_eval["tiny_jpegs_top1_error"] == result.final_eval["top1_error"]  # the same split again


def test_label_sets_become_multi_hot_targets_and_score_any_hit():
    import jax.numpy as jnp
    from flax import nnx

    from scaling.program.evaluation import make_eval_step

    selection = select(np.repeat(np.arange(4), 3), 4, classes=2)
    first, second = selection.classes
    other = next(c for c in range(4) if c not in selection.classes)
    label_sets = np.empty(3, object)
    label_sets[:] = [np.array([first]), np.array([first, second]), np.array([other])]
    assert selection.eval_indices(label_sets).tolist() == [0, 1]
    targets = selection.targets(label_sets[:2])
    assert targets.tolist() == [[1, 0], [1, 1]]

    class Fixed(nnx.Module):  # predicts class 1 for every image
        def __call__(self, x):
            return jnp.tile(jnp.array([0.0, 1.0]), (x.shape[0], 1))

    graph, state = nnx.split(Fixed())
    norm = {"mean": np.zeros(1, np.float32), "std": np.ones(1, np.float32)}
    zeros = {key: np.float32(0) for key in ("loss", "top1_wrong", "top5_wrong", "count")}  # running totals
    sums = make_eval_step(graph, 2)(zeros, state, nnx.State({}), np.zeros((2, 2, 2, 1), np.uint8), targets,
                                    np.ones(2, np.float32), norm)
    assert float(sums["top1_wrong"]) == 1.0 and float(sums["count"]) == 2.0  # right only where class 1 is a label
