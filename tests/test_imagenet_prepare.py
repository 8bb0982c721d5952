"""ImageNet as a user meets it: tars in the real ILSVRC2012 layout (tests/ilsvrc.py), built by tfds' real
`imagenet2012` builder through `scaling data prepare`, then `data describe` and a few training steps on each
pipeline; an incomplete validation tar refused; classes without images named; imagenet2012_subset offline."""

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds
from ilsvrc import synsets, validation_synsets, write_ilsvrc_tars

from scaling.cli import main
from scaling.data import preparation
from scaling.data.selection import select
from scaling.data.source import read_labels, read_texts
from scaling.errors import ConfigError

CLASSES = 4  # the fixture's training synsets: the first 4 of the fixed class order, so data.classes=4 selects them
RUN = ["--config", "configs/resnet.py:width=4,depth=10", "--config.data.name=imagenet2012",
       "--config.data.resolution=16", "--config.train.epochs=None", "--config.train.steps=2",
       "--config.train.batch_size=8", "--config.train.eval_batch_size=8", "--config.wandb.mode=disabled"]


def run_cli(*args: str) -> tuple[int, str, str]:
    """`scaling ARGS`: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, list[str], tuple[int, str, str]]:
    """A data_dir with tiny ILSVRC2012 tars prepared by `scaling data prepare imagenet2012`: (data_dir, synsets,
    prepare's exit code, stdout and stderr)."""
    data_dir = tmp_path_factory.mktemp("ilsvrc")
    train_synsets = write_ilsvrc_tars(data_dir / "downloads" / "manual", classes=CLASSES)
    return data_dir, train_synsets, run_cli("data", "prepare", "imagenet2012", "--data-dir", str(data_dir))


def test_prepare_builds_real_layout_tars_with_the_real_builder_and_says_what_it_built(prepared):
    data_dir, train_synsets, (code, out, err) = prepared
    assert code == 0, err
    assert "imagenet2012 is prepared" in out and "imagenet2012/5.1.0" in out and "array_record" in out
    assert "train        24 examples" in out
    assert "64 of 50,000 images: a partial set" in out
    assert "1,000 in the label set; the training tar has images of 4 (" + ", ".join(sorted(train_synsets)) in out
    assert "varying: height 16-40, width 16-40 pixels" in out  # JPEG headers: sides drawn from 16..40
    assert f"kB in {data_dir}/imagenet2012/5.1.0" in out
    assert "warning: the validation set is partial (64 of 50,000 images)" in err
    assert "only 4 of 1,000 classes" in err
    for noise in ("Downloading and preparing", "Generating", "Shuffling", "WARNING", "examples/s"):  # quiet tfds
        assert noise not in out + err


def test_prepared_labels_are_the_true_synsets_of_each_file(prepared):
    data_dir = prepared[0]
    builder = tfds.builder("imagenet2012", data_dir=str(data_dir))
    names, labels = synsets(), validation_synsets()
    files = read_texts(builder, "validation", "file_name")
    truth = [labels[int(name[len("ILSVRC2012_val_"):-len(".JPEG")]) - 1] for name in files]
    assert [names[label] for label in read_labels(builder, "validation")] == truth
    train = [names[label] for label in read_labels(builder, "train")]
    assert train == [name.split("_")[0] for name in read_texts(builder, "train", "file_name")]


def test_describe_then_a_few_steps_on_each_pipeline(prepared, tmp_path):
    data_dir = prepared[0]
    run = [*RUN, f"--config.data.data_dir={data_dir}", f"--config.data.classes={CLASSES}"]
    code, out, err = run_cli("data", "describe", *run)
    assert code == 0, err
    assert "classes          4 of 1000" in out and "training pool    24 examples" in out
    assert "evaluation       2 examples of split 'validation'" in out  # lines 54, 55 of tfds' labels: chosen classes
    assert "validation       64 of 50,000 images: a partial set (its labels are right" in out
    for pipeline in ("cache", "stream"):
        workdir = tmp_path / pipeline
        code, out, err = run_cli("train", *run, f"--config.data.pipeline={pipeline}", "--workdir", str(workdir))
        assert code == 0, err
        result = json.loads((workdir / "result.json").read_text())
        assert result["status"] == "completed" and result["step"] == 2 and result["num_classes"] == CLASSES


def test_classes_without_training_images_are_refused_and_named(prepared):
    data_dir = prepared[0]
    code, _, err = run_cli("data", "describe", *RUN, f"--config.data.data_dir={data_dir}", "--config.data.classes=6")
    assert code == 2
    assert "error: data.classes=6 (the first 6 classes of the fixed class order) selects 2 classes without " \
           "training examples" in err
    assert "the training split has examples of 4 of 1,000 classes" in err and "choose data.classes <= 4" in err
    # data.classes=None keeps the whole label space (as on tfds' mock data), but cannot hold out a minival from it.
    code, out, err = run_cli("data", "describe", *RUN, f"--config.data.data_dir={data_dir}")
    assert code == 0 and "classes          1000 of 1000" in out
    code, _, err = run_cli("data", "describe", *RUN, f"--config.data.data_dir={data_dir}",
                           "--config.data.minival_per_class=1")
    assert code == 2 and "data.minival_per_class=1 holds out examples of every class, but data.classes=None (all " \
                         "1,000 classes) includes 996 classes without training examples" in err
    # By synset where the names are known (tfds' label names), with the counts that are too small for minival.
    names = synsets()
    labels = np.array([names.index(synset) for synset in prepared[1] for _ in range(6)])
    with pytest.raises(ConfigError, match=r"selects 2 classes without training examples: n\d{8}, n\d{8};"):
        select(labels, 1000, classes=6, class_names=names)
    with pytest.raises(ConfigError, match=r"data.minival_per_class=6 would leave no training examples in n0\d{7} "
                                          r"\(6 examples\), .*; choose data.minival_per_class < 6"):
        select(labels, 1000, classes=4, minival_per_class=6, class_names=names)


@pytest.mark.parametrize("numbers, missing", [
    ([n for n in range(1, 11) if n != 3], "ILSVRC2012_val_00000003.JPEG is missing"),  # a gap
    (range(5, 15), "ILSVRC2012_val_00000001.JPEG is missing"),  # not from the first
])
def test_an_incomplete_validation_tar_is_refused_before_building(tmp_path, numbers, missing):
    write_ilsvrc_tars(tmp_path / "downloads" / "manual", classes=2, train_per_class=2, val_numbers=numbers)
    code, out, err = run_cli("data", "prepare", "imagenet2012", "--data-dir", str(tmp_path))
    assert code == 2 and not out
    assert err.startswith(f"error: {tmp_path}/downloads/manual/ILSVRC2012_img_val.tar would be built with wrong "
                          f"labels: {missing}")
    assert "Put the complete ILSVRC2012_img_val.tar (50,000 images" in err
    assert not (tmp_path / "imagenet2012").exists()


def test_describe_and_prepare_flag_a_dataset_tfds_built_from_a_gapped_tar(tmp_path):
    manual = tmp_path / "downloads" / "manual"
    write_ilsvrc_tars(manual, classes=CLASSES, train_per_class=2, val_numbers=[1, 2, 4, 53, 54, 55])
    with preparation.quiet():  # built by tfds directly, as before `scaling data prepare` checked the tar
        tfds.builder("imagenet2012", data_dir=str(tmp_path)).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual), try_download_gcs=False))
    code, out, _ = run_cli("data", "describe", *RUN, f"--config.data.data_dir={tmp_path}",
                           f"--config.data.classes={CLASSES}")
    assert code == 0
    assert "validation       6 images, ILSVRC2012_val_00000003.JPEG is missing: tfds labels them by position, " \
           "so images after it have wrong labels" in out
    code, _, err = run_cli("data", "prepare", "imagenet2012", "--data-dir", str(tmp_path))
    assert code == 2 and "is already prepared in" in err and "from an incomplete ILSVRC2012_img_val.tar" in err


def test_subset_offline_fails_fast_saying_which_file_to_put_where(tmp_path, monkeypatch):
    manual = tmp_path / "downloads" / "manual"
    write_ilsvrc_tars(manual, classes=2, train_per_class=2, val_count=4)
    monkeypatch.setattr(preparation, "_reachable", lambda host: False)  # offline, also where a network is
    start = time.monotonic()
    code, _, err = run_cli("data", "prepare", "imagenet2012_subset/1pct", "--data-dir", str(tmp_path))
    assert code == 2 and time.monotonic() - start < 20
    url = "https://raw.githubusercontent.com/google-research/simclr/master/imagenet_subsets/1percent.txt"
    assert f"error: building imagenet2012_subset/1pct needs {url}" in err
    assert f"put it in {manual}/1percent.txt" in err
    (manual / "1percent.txt").write_text("n01440764_1.JPEG\n")  # found where tfds looks, but not the real file
    code, _, err = run_cli("data", "prepare", "imagenet2012_subset/1pct", "--data-dir", str(tmp_path))
    assert code == 2 and f"{manual}/1percent.txt is not the file at {url}" in err
    start = time.monotonic()
    assert not preparation._reachable("scaling-tests.invalid")  # a name that never resolves: false, in seconds
    assert time.monotonic() - start < 5


def test_a_class_count_sweep_on_prepared_tars_runs_collects_and_reports_per_class_count(tmp_path):
    """The path a user takes: prepare, sweep data.classes, collect the table, report one set of laws per count."""
    data_dir, validation = tmp_path / "data", 400
    train_synsets = write_ilsvrc_tars(data_dir / "downloads" / "manual", classes=6, val_count=validation)
    assert run_cli("data", "prepare", "imagenet2012", "--data-dir", str(data_dir))[0] == 0
    sweep_file = tmp_path / "classes.py"
    sweep_file.write_text(
        "from scaling.sweep import sweep\n"
        "CONFIG = 'configs/resnet.py:width=4,depth=10'\n"
        f"OVERRIDES = {{'data.name': 'imagenet2012', 'data.data_dir': {str(data_dir)!r}, 'data.resolution': 16,\n"
        "             'train.epochs': None, 'train.steps': 3, 'train.batch_size': 8, 'train.eval_batch_size': 8,\n"
        "             'train.eval_every_steps': 1, 'train.log_every_steps': 1}\n"
        "def get_grid():\n"
        "    return sweep('data.classes', [4, 6])\n"
    )
    root = tmp_path / "runs"
    run = ("sweep", "run", str(sweep_file), "--root", str(root), "--wandb", "disabled", "--parallel", "2")
    assert run_cli(*run)[0] == 0
    assert run_cli("sweep", "results", "--root", str(root))[0] == 0
    table = pd.read_csv(root / "results.csv")
    truth = validation_synsets()[:validation]  # tfds' own label list: which validation images show each class
    for classes in (4, 6):
        rows = table[table["num_classes"] == classes]
        assert len(rows) == 3 and set(rows["status"]) == {"completed"}  # one row per evaluation (steps 1-3)
        assert set(rows["eval_examples"]) == {sum(synset in train_synsets[:classes] for synset in truth)}
    code, out, _ = run_cli("report", str(root / "results.csv"), "--out", str(root / "report"), "--bootstrap", "0",
                           "--formats", "png")
    assert code == 0 and "one report per class count" in out
    for classes in (4, 6):
        record = json.loads((root / "report" / f"classes-{classes}" / "report.json").read_text())
        assert record["rows"] == 3
