"""Data: tfds datasets (the embedded `digits`, ImageNet, any tfds image-classification set), the `synthetic`
dataset generated in memory (no files, no tfds), and what a run reads of them: class subsets, nested
class-balanced training subsets, the uint8 cache or streaming, batch order and augmentation. Each module is
imported by its own path; the package names only the facts of a dataset that the rest of the suite asks for."""

from scaling.data.source import DatasetFacts, dataset_facts, open_builder

__all__ = ["DatasetFacts", "dataset_facts", "open_builder"]
