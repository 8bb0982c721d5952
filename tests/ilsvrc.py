"""Tiny tars in the real ILSVRC2012 layout, for tfds' real `imagenet2012` builder.

ILSVRC2012_img_train.tar holds one inner tar per synset (`n01440764.tar`) of JPEGs `n01440764_<N>.JPEG`;
ILSVRC2012_img_val.tar holds `ILSVRC2012_val_00000001.JPEG`, ... directly. tfds labels the validation images
with the lines of its own validation_labels.txt in the sorted order of their names, so the k-th validation
image here shows the class of that list's k-th line (the first lines name arbitrary synsets).

`write_ilsvrc_tars(manual_dir, classes=4)` writes the first 4 classes of the suite's fixed class order, so
`data.classes=4` selects exactly them; with the default 64 validation images two of those show such a class
(lines 54 and 55 of tfds' list), so a run on them has a non-empty evaluation set.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from scaling.data.selection import chosen_classes

LABELS_DIR = Path(tfds.__file__).parent / "datasets" / "imagenet2012"


def synsets() -> list[str]:
    """The 1,000 synsets in tfds' label order (label k is the k-th)."""
    return (LABELS_DIR / "labels.txt").read_text().split()


def validation_synsets() -> list[str]:
    """The synset of each of the 50,000 validation images, in the order of their names."""
    return (LABELS_DIR / "validation_labels.txt").read_text().split()


def _jpeg(rng: np.random.Generator, seed: int, sizes: tuple[int, int]) -> bytes:
    height, width = (int(side) for side in rng.integers(sizes[0], sizes[1] + 1, size=2))
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    colour = np.array([seed * 37 % 256, 255 - seed * 53 % 256, seed * 97 % 256], np.float64)
    image = colour * (0.5 + 0.5 * np.sin(3 * xs + 2 * ys + seed))[..., None] + rng.normal(0, 8, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_ilsvrc_tars(
    manual_dir: str | Path,
    classes: int | Sequence[str] = 4,
    train_per_class: int = 6,
    val_count: int = 64,
    val_numbers: Iterable[int] | None = None,
    sizes: tuple[int, int] = (16, 40),
    seed: int = 0,
) -> list[str]:
    """Writes ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar into `manual_dir`; returns the training synsets.

    classes: the synsets with training images: a number K (the first K of the suite's fixed class order, which
        `data.classes=K` selects) or the synsets themselves.
    train_per_class: JPEGs per synset, `<synset>_<N>.JPEG` for N = 1, 2, ... (real ones are numbered sparsely).
    val_count: validation images ILSVRC2012_val_00000001.JPEG ... in an unbroken run from the first;
    val_numbers: instead, exactly these image numbers (e.g. with a gap, to imitate an incomplete tar).
    sizes: image sides are drawn from this range (inclusive): the images vary in size, as ImageNet's do.
    """
    manual = Path(manual_dir)
    manual.mkdir(parents=True, exist_ok=True)
    names = synsets()
    train = [names[k] for k in chosen_classes(len(names), classes)] if isinstance(classes, int) else list(classes)
    rng = np.random.default_rng(seed)
    with tarfile.open(manual / "ILSVRC2012_img_train.tar", "w") as outer:
        for synset in train:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as archive:
                for number in range(1, train_per_class + 1):
                    _add(archive, f"{synset}_{number}.JPEG", _jpeg(rng, names.index(synset), sizes))
            _add(outer, f"{synset}.tar", inner.getvalue())
    numbers = list(val_numbers) if val_numbers is not None else list(range(1, val_count + 1))
    truth = validation_synsets()
    with tarfile.open(manual / "ILSVRC2012_img_val.tar", "w") as archive:
        for number in numbers:
            _add(archive, f"ILSVRC2012_val_{number:08d}.JPEG", _jpeg(rng, names.index(truth[number - 1]), sizes))
    return train
