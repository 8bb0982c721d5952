"""A tiny ImageNet look-alike for the tests: real JPEG files of varying sizes, in class folders, built by a
tfds builder from a manual directory (as imagenet2012 is) into array_record or tfrecord files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

NUM_CLASSES = 6
SPLITS = {"train": 20, "validation": 4}  # images per class


def write_jpegs(root: Path, splits: dict[str, int] = SPLITS, sizes: tuple[int, int] = (24, 64), seed: int = 0) -> None:
    """root/<split>/<class>/<i>.jpg: smooth class-coloured images, sides drawn from `sizes` (inclusive)."""
    rng = np.random.default_rng(seed)
    for split, per_class in splits.items():
        for label in range(NUM_CLASSES):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                height, width = rng.integers(sizes[0], sizes[1] + 1, size=2)
                ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
                colour = np.array([label * 40, 255 - label * 40, (label * 97) % 256], np.float64)
                image = colour * (0.5 + 0.5 * np.sin(3 * xs + 2 * ys + index))[..., None]
                image += rng.normal(0, 8, image.shape)
                Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{index}.jpg", quality=90)


class TinyJpegs(tfds.core.GeneratorBasedBuilder):
    """JPEG files from the manual directory, labelled by their folder."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Written by tests/tiny_jpegs.write_jpegs."

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        manual = Path(dl_manager.manual_dir)
        return {folder.name: self._generate_examples(folder) for folder in sorted(manual.iterdir())}

    def _generate_examples(self, folder: Path):
        for path in sorted(folder.glob("*/*.jpg")):
            yield f"{path.parent.name}/{path.name}", {"image": path, "label": int(path.parent.name)}


def build(data_dir: Path, file_format: str = "array_record", **jpegs) -> str:
    """Writes the JPEGs (`jpegs`: write_jpegs' options) and builds the dataset into `data_dir`; returns it."""
    manual = data_dir / "manual"
    write_jpegs(manual, **jpegs)
    config = tfds.download.DownloadConfig(manual_dir=str(manual), try_download_gcs=False)
    tfds.disable_progress_bar()
    TinyJpegs(data_dir=str(data_dir)).download_and_prepare(download_config=config, file_format=file_format)
    return str(data_dir)
