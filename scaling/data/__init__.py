"""Data: tfds datasets (embedded `digits`, ImageNet, ...), nested subsets, batch order."""

from scaling.data.batches import batch_indices
from scaling.data.digits import Digits
from scaling.data.source import (
    EMBEDDED_DATASETS,
    DatasetFacts,
    dataset_facts,
    open_builder,
    prepare_embedded,
    read_labels,
)
from scaling.data.subsets import class_balanced_order

__all__ = [
    "EMBEDDED_DATASETS",
    "DatasetFacts",
    "Digits",
    "batch_indices",
    "class_balanced_order",
    "dataset_facts",
    "open_builder",
    "prepare_embedded",
    "read_labels",
]
