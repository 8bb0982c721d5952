"""Model families (ResNet, ViT) behind one config-driven API."""

from scaling.models.registry import (
    MODEL_NAMES,
    build_model,
    count_params,
    default_model_config,
    describe_model,
    validate_model_config,
)

__all__ = [
    "MODEL_NAMES",
    "build_model",
    "count_params",
    "default_model_config",
    "describe_model",
    "validate_model_config",
]
