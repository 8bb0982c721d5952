"""Model families (ResNet, BiT, ViT, AlexNet, VGG, ConvNeXt) behind one config-driven API."""

from scaling.models.counting import Counts
from scaling.models.registry import (
    MODEL_NAMES,
    VARIANT_NAMES,
    build_model,
    count_params,
    default_model_config,
    describe_model,
    model_counts,
    validate_model_config,
    variant_config,
)
from scaling.models.sizing import shape_for

__all__ = [
    "MODEL_NAMES",
    "VARIANT_NAMES",
    "Counts",
    "build_model",
    "count_params",
    "default_model_config",
    "describe_model",
    "model_counts",
    "shape_for",
    "validate_model_config",
    "variant_config",
]
