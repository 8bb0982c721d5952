"""`digits`: scikit-learn's embedded 8x8 handwritten digits as a real tfds dataset.

The 1,797 images ship inside scikit-learn (``sklearn.datasets.load_digits``), so
this builder prepares a complete tfds dataset with no network access. It lets the
whole suite (reading, subsets, training, evaluation) run end to end on a laptop
through exactly the tfds code path ImageNet takes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

_DESCRIPTION = """\
The UCI ML hand-written digits data set as embedded in scikit-learn
(`sklearn.datasets.load_digits`): 1,797 grey-scale 8x8 images of the digits 0-9
written by 43 people. Pixel intensities 0..16 are rescaled to 0..255 (rounded)
and stored as uint8 PNGs of shape (8, 8, 1). The `train`/`test` splits are a
fixed stratified hold-out (20% test, seed 0).
"""

_CITATION = """\
@misc{alpaydin1998optical,
  author       = {Alpaydin, E. and Kaynak, C.},
  title        = {Optical Recognition of Handwritten Digits},
  year         = {1998},
  howpublished = {UCI Machine Learning Repository},
  doi          = {10.24432/C50P49}
}
"""

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The embedded digits as {split: (images uint8 [N,8,8,1], labels int64 [N])}."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return {
        "train": (images[train_idx], labels[train_idx]),
        "test": (images[test_idx], labels[test_idx]),
    }


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 1,797 8x8 handwritten digits, prepared offline."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release: stratified 80/20 train/test, seed 0."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        arrays = digits_arrays()
        return {name: self._generate_examples(*arrays[name]) for name in ("train", "test")}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}
