"""What the suite knows about the datasets it supports first-class: splits, and how each is prepared.

Any tfds image-classification dataset works by name; this catalog adds the ImageNet family's
default evaluation split and the exact preparation steps that tfds cannot do on its own (the
manual ImageNet download).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

import ml_collections

if TYPE_CHECKING:
    from scaling.data.source import DatasetFacts

IMAGENET_URL = "https://image-net.org/download-images"
IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


@dataclasses.dataclass(frozen=True)
class Entry:
    """A dataset family: its evaluation split, the ImageNet tar files it is built from (if any), the files tfds
    fetches from the network while building it from them (by tfds config, "" for any), and whether tfds labels its
    validation images by position in ILSVRC2012_img_val.tar (see scaling.data.preparation)."""

    eval_split: str
    manual_files: tuple[str, ...] = ()
    note: str = ""
    downloads: dict[str, str] = dataclasses.field(default_factory=dict)
    labels_by_position: bool = False


SUBSET_LISTS = "https://raw.githubusercontent.com/google-research/simclr/master/imagenet_subsets/"


CATALOG: dict[str, Entry] = {
    "digits": Entry("test", note="embedded: scikit-learn's 1,797 8x8 digits, built offline"),
    "imagenet2012": Entry(
        "validation", IMAGENET_TARS, "ILSVRC-2012: 1,281,167 train, 50,000 validation, 1,000 classes",
        labels_by_position=True,
    ),
    "imagenet2012_subset": Entry(
        "validation", IMAGENET_TARS, "1% or 10% of ImageNet train (configs 1pct, 10pct)",
        downloads={"1pct": SUBSET_LISTS + "1percent.txt", "10pct": SUBSET_LISTS + "10percent.txt"},
        labels_by_position=True,
    ),
    "imagenet_resized": Entry(
        "validation", (), "ImageNet downsampled to 8, 16, 32 or 64 pixels (Chrabaszcz et al. 2017)"
    ),
    "imagenette": Entry("validation", (), "10 easy ImageNet classes (fast.ai)"),
    "imagenet_v2": Entry("test", (), "ImageNetV2 (Recht et al. 2019): a new 10,000-image test set, evaluation only"),
    "imagenet2012_real": Entry(
        "validation", (IMAGENET_TARS[1],), "ImageNet validation with the ReaL labels (Beyer et al. 2020)",
        downloads={"": "https://raw.githubusercontent.com/google-research/reassessed-imagenet/master/real.json"},
    ),
}


def base_name(name: str) -> str:
    """'imagenet_resized/64x64:0.1.0' -> 'imagenet_resized'."""
    return name.split(":")[0].split("/")[0]


def default_eval_split(name: str, splits: Iterable[str]) -> str:
    """The split a dataset is evaluated on unless data.eval_split says otherwise: the catalog's, else
    'validation' or 'test', whichever the dataset has."""
    entry = CATALOG.get(base_name(name))
    if entry:
        return entry.eval_split
    return next((split for split in ("validation", "test") if split in splits), "test")


def eval_split(data: ml_collections.ConfigDict, facts: DatasetFacts) -> str:
    """data.eval_split, or the dataset's usual evaluation split when it is None."""
    return data.eval_split or default_eval_split(data.name, facts.split_sizes)


def prepare_command(name: str, data_dir: str) -> str:
    """The command that builds `name` into `data_dir`."""
    return f"scaling data prepare {name} --data-dir {data_dir}"


def how_to_prepare(name: str, data_dir: str) -> str:
    """Exactly what to download, where to put it, and which command builds the dataset."""
    entry = CATALOG.get(base_name(name))
    if entry and entry.manual_files:
        files = " and ".join(entry.manual_files)
        return (
            f"{base_name(name)} cannot be downloaded automatically: register at {IMAGENET_URL}, download "
            f"{files} into {data_dir}/downloads/manual/, then run `{prepare_command(name, data_dir)}` "
            "(it runs tfds' build and writes array_record files, which give random access for subsets)."
        )
    return f"Build it with `{prepare_command(name, data_dir)}` (tfds downloads it; needs network once)."
