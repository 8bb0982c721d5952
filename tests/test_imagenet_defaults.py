"""Defaults that fit ImageNet, every `scaling train` / `data describe` example as printed, and the caches
`data describe` announces: ImageNet-family datasets get 224 pixels, ImageNet's stem and patch sizes and
ImageNet's mean and std when the config leaves them to the dataset; the digits keep theirs."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from tiny_jpegs import NUM_CLASSES, SPLITS, build

import scaling.cli
import scaling.tools.data_commands
from scaling.cli import TRAIN_EPILOG, main
from scaling.config.loading import load_config
from scaling.config.validation import validate_compute, validate_config
from scaling.data import DatasetFacts, dataset_facts, open_builder
from scaling.data.cache import cache_bytes, cache_directory, describe_size, rows_filled
from scaling.data.pipeline import IMAGENET_MEAN, IMAGENET_STD, NORM_ROWS, is_imagenet_family, open_run_data
from scaling.data.source import declared_facts
from scaling.errors import ConfigError
from scaling.plan import plan_run
from scaling.tools.data_commands import DESCRIBE_EPILOG

IMAGENET_SPLITS = {"train": 1_281_167, "validation": 50_000}


# ------------------------------------------------------------------ defaults by dataset


@pytest.mark.parametrize("spec, overrides, resolution, normalization, knob", [
    ("configs/resnet.py", [], None, "estimate", ("stem", "small")),
    ("configs/resnet.py", ["data.name=imagenet2012"], 224, "imagenet", ("stem", "imagenet")),
    ("configs/resnet.py", ["data.name=imagenette"], 224, "imagenet", ("stem", "imagenet")),
    ("configs/resnet.py", ["data.name=imagenet2012", "data.resolution=32"], 32, "imagenet", ("stem", "small")),
    ("configs/resnet.py", ["data.name=imagenet_resized/64x64"], None, "imagenet", ("stem", "imagenet")),
    ("configs/resnet.py", ["data.name=imagenet_resized/32x32"], None, "imagenet", ("stem", "small")),
    ("configs/resnet.py:stem=small", ["data.name=imagenet2012"], 224, "imagenet", ("stem", "small")),
    ("configs/resnet.py", ["data.name=imagenet2012", "data.normalization=estimate"], 224, "estimate",
     ("stem", "imagenet")),
    ("configs/bit.py", ["data.name=imagenet2012_subset/1pct"], 224, "imagenet", ("stem", "imagenet")),
    ("configs/vit.py", [], None, "estimate", ("patch_size", 2)),
    ("configs/vit.py", ["data.name=imagenet2012"], 224, "imagenet", ("patch_size", 16)),
    ("configs/vit.py:patch_size=8", ["data.name=imagenet2012", "data.resolution=64"], 64, "imagenet",
     ("patch_size", 8)),
    ("configs/convnext.py", [], None, "estimate", ("patch_size", 1)),
    ("configs/convnext.py", ["data.name=imagenet2012"], 224, "imagenet", ("patch_size", 4)),
    ("configs/model.py:variant=resnet50", [], 224, "estimate", ("stem", "imagenet")),  # a variant's own knobs
    ("configs/history/vgg16.py", [], 224, "imagenet", ("name", "vgg")),
])
def test_keys_left_to_the_dataset_are_decided_when_the_config_is_loaded(spec, overrides, resolution, normalization,
                                                                        knob):
    config = load_config(spec, overrides)
    assert (config.data.resolution, config.data.normalization) == (resolution, normalization)
    assert config.model[knob[0]] == knob[1]


def test_the_imagenet_family():
    for name in ("imagenet2012", "imagenet2012_subset/10pct", "imagenet2012_real", "imagenet_resized/64x64:0.1.0",
                 "imagenette/320px-v2", "imagenet_v2"):
        assert is_imagenet_family(name), name
    assert not any(map(is_imagenet_family, ("digits", "cifar10", "imagenet_a", "tiny_jpegs")))


def test_imagenet_normalization_needs_rgb_images():
    digits = DatasetFacts("digits", num_classes=10, image_shape=(8, 8, 1), split_sizes={"train": 1437, "test": 360})
    validate_config(load_config("configs/resnet.py"), digits)
    with pytest.raises(ConfigError, match=r"data\.normalization='imagenet'.*1 channel"):
        validate_config(load_config("configs/resnet.py", ["data.normalization=imagenet"]), digits)
    with pytest.raises(ConfigError, match=r"data\.normalization"):
        validate_config(load_config("configs/resnet.py", ["data.normalization=mean"]), digits)


# ------------------------------------------------------------------ every example runs as printed


def _commands(text: str) -> list[str]:
    """Each `scaling train` / `scaling data describe` command at the start of a line of `text`, with its
    continuation lines joined and its trailing comment dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [re.sub(r"\s+#.*$", "", match) for match in
            re.findall(r"^\s*(?:\.venv/bin/)?(scaling (?:train|data describe) .*)$", joined, re.MULTILINE)]


def _documents() -> dict[str, str]:
    root = Path(__file__).parent.parent
    files = [root / "README.md", *sorted((root / "configs").glob("*.py")),
             *sorted((root / "configs" / "history").glob("*.py"))]
    return {"scaling train --help": TRAIN_EPILOG, "scaling data describe --help": DESCRIBE_EPILOG,
            **{path.relative_to(root).as_posix(): path.read_text() for path in files}}


EXAMPLES = [(where, command) for where, text in _documents().items() for command in _commands(text)]


def test_the_examples_are_found():
    where = {place for place, _ in EXAMPLES}
    assert {"scaling train --help", "scaling data describe --help", "README.md", "configs/resnet.py"} <= where
    imagenet = [command for _, command in EXAMPLES if "imagenet" in command or "history" in command]
    assert len(imagenet) >= 12 and not any("..." in command for _, command in EXAMPLES)


@pytest.mark.parametrize("where, command", EXAMPLES, ids=[f"{where}: {command[:60]}" for where, command in EXAMPLES])
def test_every_example_is_a_valid_command_and_config(where, command, digits_data_dir, tmp_path, monkeypatch):
    """The command line parses as printed (placeholders DIR and ~ filled in), and its config is valid against its
    dataset: the digits as built here, ImageNet from its tfds definition with ImageNet's split sizes."""
    checked = []

    def validate(args):
        config = load_config(args.config, args.overrides)
        name = config.data.name
        if name == "digits":
            facts = dataset_facts("digits", digits_data_dir, config.data.resolution)
        else:
            facts = declared_facts(name, str(tmp_path / "unprepared"), config.data.resolution)
            assert is_imagenet_family(name) and not facts.split_sizes
            facts.split_sizes.update(IMAGENET_SPLITS)
        (validate_config if facts.split_sizes else validate_compute)(config, facts)
        checked.append(config)
        return 0

    monkeypatch.setattr(scaling.cli, "_train", validate)
    monkeypatch.setattr(scaling.tools.data_commands, "_describe", validate)
    argv = [Path(word).expanduser().as_posix() if word.startswith("~") else str(tmp_path) if word == "DIR" else word
            for word in shlex.split(command)[1:]]
    assert main(argv) == 0
    assert len(checked) == 1


# ------------------------------------------------------------------ normalisation and the caches a run makes


@pytest.fixture(scope="module")
def jpeg_data_dir(tmp_path_factory) -> str:
    return build(tmp_path_factory.mktemp("jpegs"))


JPEG_MODEL = "configs/resnet.py:width=4,depth=10"


def jpeg_overrides(data_dir: str, cache_dir: Path, *overrides: str) -> list[str]:
    return ["data.name=tiny_jpegs", f"data.data_dir={data_dir}", f"data.cache_dir={cache_dir}", "data.resolution=16",
            "train.epochs=None", "train.steps=2", "train.batch_size=16", "train.eval_batch_size=16",
            "wandb.mode=disabled", *overrides]


def jpeg_config(data_dir: str, cache_dir: Path, *overrides: str):
    return load_config(JPEG_MODEL, jpeg_overrides(data_dir, cache_dir, *overrides))


def _run_data(config):
    plan = plan_run(config)
    return open_run_data(config, plan.builder, plan.facts, plan.selection)


def test_streaming_with_imagenet_statistics_caches_no_training_images(jpeg_data_dir, tmp_path):
    config = jpeg_config(jpeg_data_dir, tmp_path, "data.pipeline=stream", "data.normalization=imagenet")
    data = _run_data(config)
    np.testing.assert_array_equal(data.norm["mean"], np.float32(IMAGENET_MEAN))
    np.testing.assert_array_equal(data.norm["std"], np.float32(IMAGENET_STD))
    assert [path.name.split("-")[0] for path in tmp_path.glob("tiny_jpegs/*/*-16px-*")] == ["validation"]


def test_estimated_statistics_come_from_the_first_training_images_of_the_order(jpeg_data_dir, tmp_path):
    whole = _run_data(jpeg_config(jpeg_data_dir, tmp_path))
    streamed = _run_data(jpeg_config(jpeg_data_dir, tmp_path, "data.pipeline=stream"))  # caches only the sample
    subset = _run_data(jpeg_config(jpeg_data_dir, tmp_path, "data.train_examples=30"))
    images = np.asarray(whole.train.images)
    assert len(images) < NORM_ROWS  # the sample is the whole subset here
    for data, sample in ((whole, images), (streamed, images), (subset, images[:30])):
        pixels = sample.reshape(-1, 3) / 255.0
        np.testing.assert_allclose(data.norm["mean"], pixels.mean(0), rtol=1e-5)
        np.testing.assert_allclose(data.norm["std"], pixels.std(0), rtol=1e-5)


def test_cache_bytes_by_hand():
    assert cache_bytes(50_000, (224, 224, 3)) == 50_000 * 224 * 224 * 3 == 7_526_400_000
    assert describe_size(50_000, (224, 224, 3)) == "50,000 x 224x224x3 = 7.5 GB"
    assert describe_size(1_281_167, (224, 224, 3)) == "1,281,167 x 224x224x3 = 192.9 GB"  # 192,851,506,176 bytes
    assert describe_size(1_281_167, (64, 64, 3)) == "1,281,167 x 64x64x3 = 15.7 GB"
    assert describe_size(360, (8, 8, 1)) == "360 x 8x8x1 = 23.0 kB" and describe_size(2, (8, 8, 1)) == (
        "2 x 8x8x1 = 128 bytes")


def test_describe_lists_each_cache_with_its_size_before_and_after_the_run_builds_it(jpeg_data_dir, tmp_path,
                                                                                   capsys):
    overrides = jpeg_overrides(jpeg_data_dir, tmp_path, "data.classes=4", "data.minival_per_class=2",
                               "data.eval_crop_fraction=0.875")
    config = load_config(JPEG_MODEL, overrides)
    args = ["data", "describe", "--config", JPEG_MODEL, *(f"--config.{item}" for item in overrides)]
    assert main(args) == 0
    before = capsys.readouterr().out
    train_rows = 4 * (SPLITS["train"] - 2)
    expected = {"train": (train_rows, "new"), "eval": (4 * SPLITS["validation"], "new"), "minival": (8, "new")}
    assert f"{cache_bytes(train_rows + 4 * SPLITS['validation'] + 8, (16, 16, 3)) / 1e3:.1f} kB to write" in before
    _check_cache_lines(before, expected, tmp_path)
    _run_data(config)
    assert main(args) == 0
    after = capsys.readouterr().out
    _check_cache_lines(after, {name: (rows, "built") for name, (rows, _) in expected.items()}, tmp_path)
    assert ": 0 bytes to write" in after
    plan = plan_run(config)
    directory = cache_directory(open_builder("tiny_jpegs", jpeg_data_dir), "train", plan.selection.train_order, 16,
                                1.0, tmp_path)
    assert rows_filled(directory) == train_rows and directory.relative_to(tmp_path).as_posix() in after
    assert NUM_CLASSES > 4  # the evaluation cache holds the chosen classes only


def _check_cache_lines(out: str, expected: dict[str, tuple[int, str]], root: Path) -> None:
    assert f"caches in {root}:" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert set(lines) == set(expected)
    for name, (rows, state) in expected.items():
        assert f"{describe_size(rows, (16, 16, 3))}" in lines[name] and f" {state} " in lines[name], lines[name]
