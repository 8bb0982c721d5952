"""Model families (ResNet, BiT, ViT, AlexNet, VGG, ConvNeXt) behind one config-driven API."""

from scaling.models.counting import Counts
from scaling.models.layers import PartitionRules
from scaling.models.registry import (
    MODEL_NAMES,
    VARIANT_NAMES,
    ModelSpec,
    build_model,
    count_params,
    default_model_config,
    describe_model,
    model_counts,
    older_run_knobs,
    partition_rules,
    validate_model_config,
    variant_config,
)
from scaling.models.sizing import shape_for

__all__ = [
    "MODEL_NAMES",
    "VARIANT_NAMES",
    "Counts",
    "ModelSpec",
    "PartitionRules",
    "build_model",
    "count_params",
    "default_model_config",
    "describe_model",
    "model_counts",
    "older_run_knobs",
    "partition_rules",
    "shape_for",
    "validate_model_config",
    "variant_config",
]
