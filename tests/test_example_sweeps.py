"""The example studies in experiments/ plan on a stand-in for ImageNet: `scaling sweep show`, and the `scaling train
--dry-run` of the largest point as each docstring gives it, checked against hand counts and the docstrings' figures.

The stand-in holds what a prepared ImageNet gives the planner and nothing more: tfds' metadata of imagenet2012 and
imagenet_resized/64x64 with the real split sizes (no records), and the suite's label cache with ImageNet's class sizes
(732 to 1,300 training images a class). It is tfds' default data dir here, as $TFDS_DATA_DIR makes a real one.
"""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core import splits as splits_lib

from scaling.cli import main
from scaling.config.loading import import_file, load_config
from scaling.data.cache import save_labels
from scaling.plan import plan_run
from scaling.sweep.spec import load_sweep

VIT = "experiments/vit_imagenet_isoflop.py"
RESNET = "experiments/resnet_imagenet64_grid.py"
TRAIN, VALIDATION, CLASSES = 1_281_167, 50_000, 1000
# ImageNet-1k's training classes hold 732 to 1,300 images: 966 of 1,300, 33 of 732 and one of 1,211 sum to 1,281,167
CLASS_SIZES = np.array([1300] * 966 + [732] * 33 + [1211])
MINIVAL = 10 * CLASSES  # both studies hold out 10 images a class


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory) -> Path:
    """tfds' default data dir, holding the metadata and labels of imagenet2012 and imagenet_resized/64x64."""
    root = tmp_path_factory.mktemp("imagenet_metadata")
    rng = np.random.default_rng(0)
    labels = {"train": rng.permutation(np.repeat(np.arange(CLASSES, dtype=np.int32), CLASS_SIZES)),
              "validation": np.repeat(np.arange(CLASSES, dtype=np.int32), VALIDATION // CLASSES)}
    for name in ("imagenet2012", "imagenet_resized/64x64"):
        builder = tfds.builder(name, data_dir=str(root))
        builder.info.set_splits(splits_lib.SplitDict([
            splits_lib.SplitInfo(name=split, shard_lengths=[len(values)], num_bytes=0, filename_template=None)
            for split, values in labels.items()
        ]))
        Path(builder.data_dir).mkdir(parents=True)
        builder.info.write_to_directory(builder.data_dir)
        for split, values in labels.items():
            folder = root / "scaling_cache" / builder.info.full_name / f"{split}-labels"
            folder.mkdir(parents=True)
            with open(folder / "labels.npy", "wb") as file:
                save_labels(file, values)
    assert CLASS_SIZES.sum() == TRAIN
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfds.core.constants, "DATA_DIR", str(root))
        yield root


def show(path: str, capsys) -> tuple[list[dict], str]:
    """`scaling sweep show` of `path`: its rows (as numbers) and its total planned compute as printed."""
    assert main(["sweep", "show", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = []
    for line in lines[3:-1]:  # after the sweep's name, the header and its rule
        run_id, *numbers = line.split()
        columns = ("params", "flops", "examples", "steps", "compute")
        rows.append({"run_id": run_id} | {key: float(value.replace(",", ""))
                                          for key, value in zip(columns, numbers, strict=True)})
    total = re.fullmatch(r"(\d+) runs, total planned compute (\S+) FLOPs", lines[-1])
    assert total and int(total[1]) == len(rows)
    return rows, lines[-1]


def docstring(path: str) -> str:
    """The sweep file's docstring."""
    return import_file(path, "sweep", "", ()).__doc__


def docstring_command(path: str, start: str) -> list[str]:
    """The docstring's command line that starts with `start`, continuation lines joined."""
    text = docstring(path).replace("\\\n", " ")
    line = next(line.strip() for line in text.splitlines() if line.strip().startswith(start))
    return shlex.split(line)


def largest_point(path: str):
    """The sweep's point of the most parameters (its widest model)."""
    points = load_sweep(path).points
    return max(points, key=lambda point: point.load().model.width)


def dry_run_matches_largest_point(path: str, capsys) -> str:
    """Run the docstring's dry run after checking it compiles the largest point's step; return its report."""
    command = docstring_command(path, "scaling train --dry-run")
    config_arg = command[command.index("--config") + 1]
    overrides = [item.removeprefix("--config.") for item in command if item.startswith("--config.")]
    given, point = load_config(config_arg, overrides), largest_point(path).load()
    for key in ("model", "mesh"):
        assert given[key].to_dict() == point[key].to_dict()
    for key in ("data.name", "data.resolution", "train.batch_size", "train.microbatches", "train.compute_dtype"):
        section, field = key.split(".")
        assert given[section][field] == point[section][field], key
    assert main(command[1:]) == 0
    return capsys.readouterr().out


def vit_train_flops(width: int, depth: int = 12, tokens: int = 196, patch: int = 16, classes: int = CLASSES) -> float:
    """Training FLOPs per image of a ViT by hand (Kaplan et al. 2020's count): per token and block, 12 d^2
    multiply-adds of projections and MLP plus 2 n d of attention; the patch embedding and the head; 2 FLOPs a
    multiply-add, backward twice the forward."""
    macs = depth * tokens * (12 * width**2 + 2 * tokens * width) + tokens * patch**2 * 3 * width + width * classes
    return 6.0 * macs


def vit_params(width: int, depth: int = 12, tokens: int = 196, patch: int = 16, classes: int = CLASSES) -> int:
    """Parameters of a ViT with global-average pooling by hand: per block QKV, output projection, MLP (4x) with their
    biases and two LayerNorms; patch embedding, position embedding, final LayerNorm, head."""
    block = 12 * width**2 + 13 * width
    return depth * block + (patch**2 * 3 + 1) * width + tokens * width + 2 * width + (width + 1) * classes


def resnet18_params(width: int, classes: int = CLASSES) -> int:
    """Parameters of ResNet-18 (He et al. 2016, table 1) of base width w by hand: convolutions 7x7x3 w in the stem,
    then 36, 128, 512 and 2,048 w^2 in the four stages (3x3 convolutions and the 1x1 projections of stages 2-4);
    BatchNorm scale and bias over 75 w channels; the head."""
    return 147 * width + 2724 * width**2 + 150 * width + (8 * width + 1) * classes


def test_vit_isoflop_study_plans_its_budgets_widths_and_subsets(imagenet_dir, capsys):
    rows, total = show(VIT, capsys)
    module = import_file(VIT, "sweep", "", ())
    assert total in docstring(VIT)  # the docstring quotes `sweep show`'s total
    points = load_sweep(VIT).points
    assert [row["run_id"] for row in rows] == [point.run_id for point in points]
    subsets = [size for size in module.SUBSETS if size is not None]
    assert subsets == sorted(subsets) and subsets[-1] < TRAIN - MINIVAL
    examples = set()
    for row, point in zip(rows, points, strict=True):
        config = point.load()
        width, budget = config.model.width, config.train.flops
        assert config.model.width // config.model.num_heads == 64
        assert row["params"] == vit_params(width)
        assert row["flops"] == pytest.approx(vit_train_flops(width), rel=0.02)
        fraction = config.train.branch_fraction  # a cooldown branch runs fraction / (1 - 0.2) of its trunk's compute
        expected = budget if fraction is None else budget * fraction / (1 - config.optim.cooldown_fraction)
        assert row["compute"] == pytest.approx(expected, rel=0.01)
        assert row["examples"] == (config.data.train_examples or TRAIN - MINIVAL)
        examples.add(row["examples"])
    assert examples == {128_000, 320_000, TRAIN - MINIVAL}
    assert len(rows) == 6 * 3 * (1 + 3)  # widths over both budgets x subsets x (trunk and three branches)
    # the work run: the trunks, and each branch from its branch point f to f / 0.8 of its trunk
    trunks = sum(row["compute"] for row, point in zip(rows, points, strict=True) if point.after is None)
    work = trunks * (1 + sum(f / 0.8 - f for f in module.COOLDOWN_FRACTIONS))
    assert float(re.search(r"the work actually run, .* is (\S+) FLOPs", docstring(VIT), re.S)[1]) == pytest.approx(
        work, rel=0.01)
    hours = work / (989e12 * 0.30) / 3600  # at the docstring's 30% MFU
    assert float(re.search(r"(\S+) hours on one H100", docstring(VIT))[1]) == pytest.approx(hours, rel=0.01)


def test_vit_subsets_are_nested_and_class_balanced_on_imagenet_class_sizes(imagenet_dir):
    trunks = [point.load() for point in load_sweep(VIT).points if point.after is None]
    tiny = [config for config in trunks if config.model.width == 192]  # ViT-Ti's trunks, one per subset
    small, large = plan_run(tiny[0]).selection, plan_run(tiny[-1]).selection
    assert small.train_examples == 128_000 and large.train_examples == TRAIN - MINIVAL
    train_labels = np.load(imagenet_dir / "scaling_cache" / "imagenet2012" / "5.1.0" / "train-labels" / "labels.npy")
    prefix = large.train_order[:128_000]
    np.testing.assert_array_equal(small.train_order[:128_000], prefix)
    np.testing.assert_array_equal(np.bincount(train_labels[prefix], minlength=CLASSES), 128)
    assert not set(prefix) & set(large.minival)


def test_vit_dry_run_of_the_largest_point_compiles_for_eight_devices(imagenet_dir, capsys):
    report = dry_run_matches_largest_point(VIT, capsys)
    assert f"{vit_params(768):,} parameters, (224, 224, 3) images, 1000 classes (imagenet2012)" in report
    assert "mesh: data=8, fsdp=1, tensor=1 on 8" in report
    assert "global batch 1024 in 1 micro-batch(es), bfloat16 compute" in report
    per_example = float(re.search(r"FLOPs per step: \S+ \(XLA.*; (\S+) per example\)", report)[1])
    assert per_example == pytest.approx(vit_train_flops(768), rel=0.02)
    assert "memory per device:" in report


def test_resnet_grid_plans_widths_by_subsets_within_a_gpu_day(imagenet_dir, capsys):
    rows, total = show(RESNET, capsys)
    module = import_file(RESNET, "sweep", "", ())
    assert total in docstring(RESNET)
    subsets = [size for size in module.SUBSETS if size is not None]
    assert subsets == sorted(subsets) and subsets[-1] < TRAIN - MINIVAL
    seen = module.OVERRIDES["train.examples"]
    widths = set()
    for row, point in zip(rows, load_sweep(RESNET).points, strict=True):
        config = point.load()
        widths.add(config.model.width)
        assert row["params"] == resnet18_params(config.model.width)
        assert row["steps"] == seen / config.train.batch_size
        assert row["compute"] == pytest.approx(row["flops"] * seen, rel=0.01)
        assert row["examples"] == (config.data.train_examples or TRAIN - MINIVAL)
    assert resnet18_params(64) == 11_689_512  # torchvision's ResNet-18
    assert len(rows) == len(widths) * len(module.SUBSETS) == 25
    hours = sum(row["compute"] for row in rows) / (989e12 * 0.10) / 3600  # at the docstring's 10% MFU
    assert float(re.search(r"(\S+) hours on one H100", docstring(RESNET))[1]) == pytest.approx(hours, rel=0.02)


def test_resnet_dry_run_of_the_largest_point_compiles(imagenet_dir, capsys):
    report = dry_run_matches_largest_point(RESNET, capsys)
    assert f"{resnet18_params(256):,} parameters, (64, 64, 3) images, 1000 classes (imagenet_resized/64x64)" in report
    assert "global batch 512 in 1 micro-batch(es), bfloat16 compute" in report
