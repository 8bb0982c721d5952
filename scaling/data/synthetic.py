"""`synthetic`: an image-classification dataset generated in host memory, of any resolution, classes and size.

It needs no files and no tfds, so any model can be trained and timed at any shape anywhere. A run reads it through
the uint8 path of the cache (scaling.data.pipeline: `CachedBatches`, `EvalSet`, augmentation on the device), with
every subset, class and minival choice of scaling.data.selection. The dataset is a pure function of data.resolution
and the data.synthetic keys (its own seed, not data.seed: runs packed with different data seeds share one dataset):

- splits "train" (data.synthetic.train_examples) and "validation" (data.synthetic.eval_examples);
- labels: every class equally often (counts differ by at most one), in a seeded order of each split;
- images: 3-channel uint8, the pattern of the row's class (a flat colour plus a vertical and a horizontal sine wave
  of the class's frequencies and phases, values 0..191) plus uniform noise 0..63: a window of the split's seeded
  noise bank at the row's seeded offset. So the classes are learnable, a row's image does not depend on which
  other rows are generated, and generating needs one vectorised pass per row (4,096 rows at 224 px: about a
  second where memory is fast). Images are made at data.resolution: data.eval_crop_fraction does not apply.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from scaling.data.source import DatasetFacts

SYNTHETIC = "synthetic"
SPLITS = ("train", "validation")
CHANNELS = 3
NOISE = 64  # noise values 0..NOISE-1 on class patterns 0..255-NOISE: no pixel overflows
_WAVE = 24  # amplitude of each sine wave
_BANK = 1 << 20  # noise offsets: a row's noise starts at one of this many positions of its split's noise bank


def is_synthetic(name: str) -> bool:
    """Whether data.name `name` asks for the synthetic dataset."""
    return name == SYNTHETIC


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
    """The synthetic dataset a config describes: facts, labels of each split, images of any rows."""

    classes: int
    train_examples: int
    eval_examples: int
    resolution: int
    seed: int

    @classmethod
    def from_config(cls, data: ml_collections.ConfigDict) -> SyntheticDataset:
        keys = data.synthetic
        return cls(keys.classes, keys.train_examples, keys.eval_examples, data.resolution, keys.seed)

    @property
    def facts(self) -> DatasetFacts:
        sizes = dict(zip(SPLITS, (self.train_examples, self.eval_examples)))
        return DatasetFacts(SYNTHETIC, self.classes, (self.resolution, self.resolution, CHANNELS), sizes)

    def labels(self, split: str) -> np.ndarray:
        """int32 labels of every row of `split`: each class equally often, in a seeded order."""
        size = self.facts.split_sizes[split]
        order = np.random.default_rng([self.seed, SPLITS.index(split), 0x1AB]).permutation(size)
        return (order % self.classes).astype(np.int32)

    def images(self, split: str, rows: np.ndarray) -> np.ndarray:
        """uint8 [len(rows), H, W, 3] images of `split` at row indices `rows`."""
        side = self.resolution
        vertical, across = self._patterns()
        rng = np.random.default_rng([self.seed, SPLITS.index(split), 0x4015E])
        bank = np.frombuffer(rng.bytes(side * side * CHANNELS + _BANK), np.uint8) >> 2  # 0..NOISE-1
        offsets = rng.integers(0, _BANK, self.facts.split_sizes[split])[rows]
        images = np.empty((len(rows), side, side * CHANNELS), np.uint8)  # rows of pixels: contiguous, fast to fill
        for image, label, offset in zip(images, self.labels(split)[rows], offsets):
            np.add(vertical[label][:, None], across[label], out=image)
            image += bank[offset : offset + image.size].reshape(image.shape)
        return images.reshape(len(rows), side, side, CHANNELS)

    def _patterns(self) -> tuple[np.ndarray, np.ndarray]:
        """Each class's vertical wave uint8 [K, H] (0..48), and its colour plus horizontal wave along a row of
        pixels uint8 [K, W * 3] (0..143): their sum is the class's pattern."""
        rng = np.random.default_rng([self.seed, 0xC0102])
        colour = rng.integers(0, 256 - NOISE - 4 * _WAVE, (self.classes, CHANNELS)).astype(np.uint8)
        frequency = rng.integers(1, 5, (2, self.classes, 1))
        phase = rng.uniform(0.0, 2 * np.pi, (2, self.classes, 1))
        position = (np.arange(self.resolution) + 0.5) / self.resolution
        waves = np.rint(_WAVE * (1 + np.sin(2 * np.pi * frequency * position + phase))).astype(np.uint8)
        return waves[0], np.repeat(waves[1], CHANNELS, axis=1) + np.tile(colour, self.resolution)
