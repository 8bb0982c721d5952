"""Data at cluster scale: cache sizes before building, free space, build progress, node-local copies of the
caches, gs:// paths (through etils.epath, mocked onto a local folder: no real bucket is reached), and
streaming from a dataset prepared as tfrecord."""

import os
import re
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from etils.epath import gpath
from etils.epath import testing as epath_testing
from helpers import tiny_args, tiny_config

from scaling.cli import main
from scaling.data import cache as cache_module
from scaling.data import progress as progress_module
from scaling.data import source as source_module
from scaling.data import staging
from scaling.data.cache import cache_bytes, cache_directory, cached_images, labels_bytes, split_labels
from scaling.data.pipeline import local_cache_root, open_run_data
from scaling.data.source import open_builder, prepare_embedded
from scaling.errors import ConfigError, DataError
from scaling.plan import plan_run

TRAIN_SIZE = 1437  # digits' training split
SHAPE = (8, 8, 1)  # digits' stored images
ROWS = 300


@pytest.fixture(scope="module")
def digits(digits_data_dir):
    return open_builder("digits", digits_data_dir)


def _build(builder, root, rows: int = ROWS, **kwargs) -> np.ndarray:
    return cached_images(builder, "train", np.arange(TRAIN_SIZE), rows, SHAPE, None, 1.0, root, **kwargs)


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return line


# ------------------------------------------------------------------ sizes, free space, progress


def test_cache_size_is_rows_times_image_bytes_on_disk(digits, tmp_path):
    assert cache_bytes(1_281_167, (224, 224, 3)) == 192_851_506_176  # ImageNet train at 224 px: 192.9 GB
    _build(digits, tmp_path, quiet=True)
    split_labels(digits, "train", tmp_path)
    folder = cache_directory(digits, "train", np.arange(TRAIN_SIZE), None, 1.0, tmp_path)
    assert (folder / "images.u8").stat().st_size == ROWS * 8 * 8 * 1 == cache_bytes(ROWS, SHAPE)
    labels = tmp_path / "digits/1.0.0/train-labels/labels.npy"
    assert labels.stat().st_size == 128 + 4 * TRAIN_SIZE == labels_bytes(TRAIN_SIZE)


def test_a_cache_build_refuses_a_filesystem_without_room(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda path: types.SimpleNamespace(free=1000))
    with pytest.raises(DataError, match=rf"needs 19\.2 kB in {tmp_path}/digits/\S+, but its filesystem has "
                                        r"1\.0 kB free: free space there, or set data\.cache_dir"):
        _build(digits, tmp_path, quiet=True)


def test_describe_prints_sizes_and_ends_with_an_error_line_when_the_disk_is_full(digits_data_dir, tmp_path,
                                                                                monkeypatch, capsys):
    # the digits without the caches other tests may have built beside them: every cache is still to be written
    data_dir = shutil.copytree(digits_data_dir, tmp_path / "data", ignore=shutil.ignore_patterns("scaling_cache"))
    args = ["data", "describe", *tiny_args("resnet", str(data_dir), "data.train_examples=100", "train.steps=1")]
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda path: types.SimpleNamespace(free=10))
    assert main(args) == 2
    captured = capsys.readouterr()
    assert re.search(r"\n  train  100 x 8x8x1 = 6\.4 kB +new ", captured.out)  # printed before the refusal
    assert f"labels cached beside them: {(128 + 4 * TRAIN_SIZE + 128 + 4 * 360) / 1e3:.1f} kB" in captured.out
    line = _error_line(captured.err)
    assert f"in {data_dir}/scaling_cache, but its filesystem has 10 bytes free" in line, line


def test_a_cache_build_reports_its_rate_and_eta(digits, tmp_path, monkeypatch, capsys):
    seconds = iter(range(0, 1000, 2))  # each reading of the clock: 2 s later
    monkeypatch.setattr(progress_module, "time", types.SimpleNamespace(monotonic=lambda: next(seconds)))
    monkeypatch.setattr(source_module, "_CHUNK", 100)  # decoded in chunks of 100 rows
    _build(digits, tmp_path, rows=1000)
    err = capsys.readouterr().err
    # clock 0 at the start, 2 after 100 rows, 4 after 200, 6 after 300 (6 s >= 5 s: a line), 8, 10, 12 (a line)
    assert "  cached 300/1,000 images (30.0%), 50 images/s, ETA 0:00:14" in err
    assert "  cached 600/1,000 images (60.0%), 50 images/s, ETA 0:00:08" in err
    assert "  cached 1,000 images in 0:00:22 (45 images/s)" in err


# ------------------------------------------------------------------ node-local copies


def _staged(builder, shared, local, rows: int = ROWS) -> np.ndarray:
    return staging.staged_images(builder, "train", np.arange(TRAIN_SIZE), rows, SHAPE, None, 1.0, shared, local)


def test_a_node_copies_the_shared_cache_once_and_never_reads_a_torn_copy(digits, tmp_path, monkeypatch):
    shared, local = tmp_path / "shared", tmp_path / "node"
    expected = np.array(_build(digits, shared, quiet=True))
    folder = cache_directory(digits, "train", np.arange(TRAIN_SIZE), None, 1.0, local)

    copy = staging.copy_bytes

    def killed_half_way(source, target, size, what):
        copy(source, target, size // 2, what)
        raise KeyboardInterrupt  # as if the process died mid-copy

    monkeypatch.setattr(staging, "copy_bytes", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        _staged(digits, shared, local)
    assert not folder.exists() and len(list(local.glob("**/.*.partial-*"))) == 1  # the torn copy is hidden

    monkeypatch.setattr(staging, "copy_bytes", copy)
    images = _staged(digits, shared, local)
    assert isinstance(images, np.memmap) and Path(images.filename).parent == folder
    np.testing.assert_array_equal(images, expected)
    assert not list(local.glob("**/.*.partial-*"))  # the torn copy was deleted
    assert (folder / "meta.json").read_text() == (cache_directory(digits, "train", np.arange(TRAIN_SIZE), None, 1.0,
                                                                  shared) / "meta.json").read_text()

    def no_copy(*args):
        raise AssertionError("an identical copy is there: nothing to copy")

    monkeypatch.setattr(staging, "copy_bytes", no_copy)
    np.testing.assert_array_equal(_staged(digits, shared, local), expected)  # a second start copies nothing


def test_a_run_reads_the_node_local_copy(digits_data_dir, tmp_path, monkeypatch):
    local = tmp_path / "node"
    config = tiny_config("resnet", digits_data_dir, "data.train_examples=100", "train.steps=1",
                         f"data.cache_dir={tmp_path / 'shared'}", "data.local_cache_dir=$SCALING_TEST_NODE/cache")
    monkeypatch.setenv("SCALING_TEST_NODE", str(local))  # expanded where the run starts, as $SLURM_TMPDIR would be
    plan = plan_run(config)
    data = open_run_data(config, plan.builder, plan.facts, plan.selection)
    assert Path(data.train.images.filename).is_relative_to(local / "cache")
    assert Path(data.eval_sets["eval"].images.filename).is_relative_to(local / "cache")
    assert (tmp_path / "shared/digits/1.0.0/train-labels/labels.npy").exists()  # built once in the shared folder


def test_local_cache_dir_must_be_a_local_folder_and_a_remote_cache_needs_one():
    config = tiny_config("resnet", "/data", "train.steps=1", "data.local_cache_dir=$SCALING_TEST_UNSET/cache").data
    with pytest.raises(ConfigError, match=r"an environment variable it names is not set here\), e.g\. "
                                          r"/tmp/scaling_cache"):
        local_cache_root(config, Path("/data/scaling_cache"))
    config = tiny_config("resnet", "gs://bucket/tfds", "train.steps=1", "data.cache_dir=gs://bucket/cache").data
    with pytest.raises(ConfigError, match=r"data\.cache_dir is gs://bucket/cache, a remote store, but the uint8 "
                                          r"caches are memory-mapped from local files: set data\.local_cache_dir"):
        local_cache_root(config, cache_module.as_path("gs://bucket/cache"))


# ------------------------------------------------------------------ gs:// through epath (mocked onto a folder)


@pytest.fixture
def bucket(tmp_path):
    """gs://bucket/... served from tmp_path/bucket/... by epath's own mock (every file operation goes through it)."""
    where = tmp_path / "bucket"

    def local(value):
        return str(where / value.removeprefix("gs://bucket/")) if isinstance(value, str) and \
            value.startswith("gs://bucket") else value

    def redirect(original, *args, **kwargs):
        return original(*map(local, map(os.fspath, args)), **kwargs)

    mocked = dict.fromkeys(("copy", "exists", "glob", "isdir", "listdir", "makedirs", "mkdir", "open", "remove",
                            "rename", "replace", "rmtree", "stat", "walk"), redirect)
    with epath_testing.mock_epath(**mocked), pytest.MonkeyPatch.context() as patch:
        patch.setattr(gpath, "_is_tf_installed", lambda: False)  # else epath sends gs:// to tf.io.gfile, unmocked
        yield where


def test_a_gs_cache_is_built_on_one_node_published_and_copied_by_the_next(digits, bucket, tmp_path, monkeypatch):
    shared = cache_module.as_path("gs://bucket/cache")
    first = np.array(_staged(digits, shared, tmp_path / "node1"))  # nothing in the bucket: built here, published
    published = bucket / "cache" / cache_directory(digits, "train", np.arange(TRAIN_SIZE), None, 1.0,
                                                   Path("/")).relative_to("/")
    assert (published / "images.u8").stat().st_size == cache_bytes(ROWS, SHAPE)
    assert (published / "meta.json").exists()

    def no_build(*args, **kwargs):
        raise AssertionError("the second node copies the published cache")

    monkeypatch.setattr(cache_module, "_extend", no_build)
    np.testing.assert_array_equal(_staged(digits, shared, tmp_path / "node2"), first)
    assert (tmp_path / "node1").exists() and (tmp_path / "node2").exists()
    labels = split_labels(digits, "train", shared)  # read and written in the bucket, through epath
    assert (bucket / "cache/digits/1.0.0/train-labels/labels.npy").stat().st_size == labels_bytes(TRAIN_SIZE)
    assert len(labels) == TRAIN_SIZE


# ------------------------------------------------------------------ streaming a tfrecord dataset


def test_streaming_a_tfrecord_dataset_names_the_conversion_which_then_streams(tmp_path, capsys):
    data_dir = str(tmp_path / "tfrecord")
    prepare_embedded("digits", data_dir, file_format="tfrecord")
    config = tiny_config("resnet", data_dir, "data.train_examples=64", "train.steps=1", "data.pipeline=stream",
                         "data.resolution=8")
    command = f"scaling data prepare digits --data-dir {data_dir}"
    with pytest.raises(ConfigError, match=rf"stored as tfrecord only: convert it with `{command}`"):
        plan_run(config)
    assert main(command.split()[1:]) == 0  # the command the error names
    out, err = capsys.readouterr()
    assert "(array_record)" in out and "converted 1,797 records" in err
    shards = sorted(path.name for path in (tmp_path / "tfrecord/digits/1.0.0").iterdir() if "-of-" in path.name)
    assert [name.split(".")[1][:12] for name in shards] == ["array_record", "tfrecord-000"] * 2  # tfrecords stay
    plan = plan_run(config)
    streamed = open_run_data(config, plan.builder, plan.facts, plan.selection).train.local_batch(3)
    cached = open_run_data(tiny_config("resnet", data_dir, "data.train_examples=64", "train.steps=1"),
                           plan.builder, plan.facts, plan.selection).train.local_batch(3)
    np.testing.assert_array_equal(streamed[1], cached[1])
    np.testing.assert_array_equal(streamed[0], cached[0])


def test_an_unreachable_remote_store_is_one_error_naming_it():
    from scaling.data.paths import remote_errors

    message = r"^cannot read or write gs://bucket/cache: Could not resolve host; check the network and the credentials"
    with pytest.raises(DataError, match=message), remote_errors("gs://bucket/cache"):
        raise OSError("Could not resolve host\nmore lines")
    with pytest.raises(OSError, match="disk"), remote_errors("/tmp/cache"):  # a local failure keeps its own error
        raise OSError("disk")
    with pytest.raises(ConfigError, match="ours"), remote_errors("gs://bucket/cache"):  # ours already name a fix
        raise ConfigError("ours")
