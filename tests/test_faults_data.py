"""Damaged data files end in one DataError (`error:` line, exit 2) naming the file and the fix: the uint8 cache
(images.u8, meta.json), the label cache (never unpickled), the shards and dataset_info.json of a prepared tfds
dataset. Each fault is injected for real into a real cache or the real prepared `digits`."""

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_args, tiny_config

from scaling.cli import main
from scaling.data.cache import load_labels, save_labels, split_labels
from scaling.data.pipeline import CacheUse, plan_selection, run_caches
from scaling.data.selection import Selection
from scaling.data.source import builder_facts, open_builder
from scaling.errors import DataError

ROWS = 100  # training subset of the runs here
TRAIN_SIZE = 1437  # digits' training split
RUN = ("resnet", f"data.train_examples={ROWS}", "train.steps=1")


def _train_cache(data_dir: Path) -> CacheUse:
    """The training cache of a tiny run on ROWS digits of `data_dir` (in its default root, DATA_DIR/scaling_cache)."""
    config = tiny_config(RUN[0], str(data_dir), *RUN[1:])
    builder = open_builder("digits", str(data_dir))
    facts = builder_facts(builder, "digits")
    selection = plan_selection(config.data, builder, facts.num_classes)
    return next(use for use in run_caches(config, builder, facts, selection) if use.name == "train")


@pytest.fixture(scope="module")
def built(digits_data_dir, tmp_path_factory) -> Path:
    """A data_dir with the prepared digits, the training labels and the cache of a tiny run's training subset."""
    data_dir = tmp_path_factory.mktemp("faults") / "data"
    shutil.copytree(digits_data_dir, data_dir)
    _train_cache(data_dir).read()
    return data_dir


@pytest.fixture
def data_dir(built, tmp_path) -> Path:
    """A copy of `built` this test may damage."""
    return Path(shutil.copytree(built, tmp_path / "data"))


def _labels_file(data_dir: Path) -> Path:
    return data_dir / "scaling_cache/digits/1.0.0/train-labels/labels.npy"


def _shard(data_dir: Path) -> Path:
    return data_dir / "digits/1.0.0/digits-train.array_record-00000-of-00001"


def _error_line(stderr: str) -> str:
    """The one `error:` line of a refused command (and no traceback)."""
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return line


def _describe(data_dir: Path) -> list[str]:
    """`scaling data describe` of the tiny run on `data_dir` (it checks the caches the run would read)."""
    return ["data", "describe", *tiny_args(RUN[0], str(data_dir), *RUN[1:])]


def test_truncated_cache_images_are_an_error_naming_them(data_dir, capsys):
    cache = _train_cache(data_dir)
    images = cache.directory / "images.u8"
    os.truncate(images, cache.size // 2)  # half the rows meta.json counts
    fix = f"delete the folder {images.parent} to rebuild it"
    with pytest.raises(DataError, match=f"{images} is damaged .*{fix}"):
        cache.read()  # what `scaling train` does
    assert main(_describe(data_dir)) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(images) in line and fix in line


@pytest.mark.parametrize("content", [b"", b"garbage\x00\xff", b"{}", b'{"rows": "many", "image_shape": [8, 8, 1]}',
                                     b'{"rows": 100, "image_shape": [4, 4, 1]}'])
def test_damaged_cache_meta_is_an_error_naming_it(data_dir, content):
    cache = _train_cache(data_dir)
    meta = cache.directory / "meta.json"
    meta.write_bytes(content)
    with pytest.raises(DataError, match=f"{meta} is damaged .*delete the folder {meta.parent} to rebuild it"):
        cache.read()


def test_deleting_the_named_folder_rebuilds_the_same_cache(data_dir, built):
    cache = _train_cache(data_dir)
    shutil.rmtree(cache.directory)
    np.testing.assert_array_equal(cache.read(), _train_cache(built).read())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "out of range"])
def test_damaged_label_cache_is_an_error_naming_it(data_dir, damage):
    path = _labels_file(data_dir)
    if damage == "truncate":
        os.truncate(path, path.stat().st_size // 2)
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    else:
        np.save(path, np.full(TRAIN_SIZE, 10, np.int32))  # digits has labels 0..9
    with pytest.raises(DataError, match=f"{path} is damaged .*delete the folder {path.parent} to rebuild it"):
        split_labels(open_builder("digits", str(data_dir)), "train", data_dir / "scaling_cache")


class _Planted:
    """An object whose unpickling makes a folder: what a writer of a shared data_dir could plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_pickled_label_cache_is_refused_not_unpickled(data_dir, tmp_path):
    path, marker = _labels_file(data_dir), tmp_path / "unpickled"
    planted = np.empty(TRAIN_SIZE, object)
    planted[:] = [_Planted(marker)] * TRAIN_SIZE
    with open(path, "wb") as file:
        np.save(file, planted, allow_pickle=True)
    pickle.loads(pickle.dumps(_Planted(tmp_path / "probe")))  # the plant works when unpickled...
    assert (tmp_path / "probe").is_dir()
    with pytest.raises(DataError, match=f"{path} is damaged"):
        split_labels(open_builder("digits", str(data_dir)), "train", data_dir / "scaling_cache")
    assert not marker.exists()  # ...and the cache never unpickled it


def test_label_sets_round_trip_without_pickle(tmp_path):
    sets = [[3, 1], [], [2], [0, 2], [1, 3], [4, 0, 2]]  # incl. an empty set and sets of equal size
    labels = np.empty(len(sets), object)
    for i, entry in enumerate(sets):
        labels[i] = np.array(entry, np.int32)
    path = tmp_path / "label-sets.npz"
    with open(path, "wb") as file:
        save_labels(file, labels)
    with np.load(path, allow_pickle=False) as stored:  # plain int arrays: nothing pickled
        assert {key: stored[key].dtype.kind for key in stored.files} == {"values": "i", "offsets": "i"}
    loaded = load_labels(path, len(sets), 5)
    assert loaded.dtype == object and [entry.tolist() for entry in loaded] == sets
    assert all(entry.dtype == np.int32 for entry in loaded)
    # what the evaluation sets make of them: classes (0, 2, 4) renumbered 0, 1, 2
    selection = Selection(np.array([0, 2, 4]), np.empty(0, np.int64), np.empty(0, np.int64), 0)
    expected = [[0, 0, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1]]
    assert selection.targets(loaded).tolist() == expected
    assert selection.eval_indices(loaded).tolist() == [2, 3, 5]
    with pytest.raises(DataError, match="labels, the split has 7"):
        load_labels(path, 7, 5)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_shard_is_an_error_naming_it_and_the_rebuild(data_dir, damage, capsys):
    shutil.rmtree(data_dir / "scaling_cache")  # labels are read from the shards again
    shard = _shard(data_dir)
    size = shard.stat().st_size
    if damage == "truncate":
        os.truncate(shard, size // 2)
    else:
        with open(shard, "r+b") as file:
            file.seek(size // 2)
            file.write(np.random.default_rng(0).bytes(4096))
    assert main(_describe(data_dir)) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(shard) in line
    assert f"delete the folder {shard.parent} and rebuild it with `scaling data prepare digits --data-dir " \
           f"{data_dir}`" in line


@pytest.mark.parametrize("content", [b"", b"not json\xff", b"{}"])
def test_damaged_dataset_info_is_an_error_naming_it(data_dir, content, capsys):
    info = data_dir / "digits/1.0.0/dataset_info.json"
    info.write_bytes(content)
    assert main(["data", "prepare", "digits", "--data-dir", str(data_dir)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"{info} is damaged" in line
    assert f"delete the folder {info.parent} and rebuild it with `scaling data prepare digits --data-dir " \
           f"{data_dir}`" in line


def test_prepare_unknown_dataset_names_it_and_how_to_list(tmp_path, capsys):
    assert main(["data", "prepare", "NOSUCHDATASET", "--data-dir", str(tmp_path)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "'NOSUCHDATASET'" in line and "tfds.list_builders()" in line


def test_held_cache_lock_names_its_holder_and_waits(data_dir, built, capfd):
    cache = _train_cache(data_dir)
    directory = cache.directory
    shutil.rmtree(directory)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from scaling.locks import hold_lock\n"
         "with hold_lock(Path(sys.argv[1]), 'test'):\n    print('held', flush=True); time.sleep(1.5)",
         str(directory / "lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    images = cache.read()  # waits for the holder to exit, then builds the cache
    assert holder.wait() == 0
    assert f"waiting for the cache {directory}, held by PID {holder.pid} on host" in capfd.readouterr().err
    np.testing.assert_array_equal(images, _train_cache(built).read())
