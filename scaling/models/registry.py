"""Model families by name: default configs, validation, building, parameter counts and summaries.

Each family module declares DEFAULTS (knob -> default), KINDS (knob -> its rule in the config schema,
`scaling.schema`: "int", "float", "fraction", "bool", "ints", optionally suffixed "|None", or a
tuple of allowed strings), VARIANTS (named architectures: variant name -> knobs), PARTITION_RULES (its
tensor-parallel rules on its own parameter paths, or none) and check/build/describe/count functions;
`check` holds the checks across knobs and the image shape. A model config is checked once
(`validate_model_config`, which returns a `ModelSpec`); what builds, describes and counts it uses the spec.
"""

import dataclasses
import difflib
import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling.errors import ConfigError
from scaling.models import alexnet, bit, convnext, resnet, vgg, vit
from scaling.models.counting import Counts
from scaling.models.layers import PartitionRules
from scaling.schema import check_value, default_value, is_valid

_FAMILIES: dict[str, ModuleType] = {
    "resnet": resnet, "vit": vit, "bit": bit, "alexnet": alexnet, "vgg": vgg, "convnext": convnext,
}
MODEL_NAMES: tuple[str, ...] = tuple(_FAMILIES)
_VARIANTS: dict[str, dict[str, Any]] = {
    variant: {"name": name, **knobs} for name, family in _FAMILIES.items() for variant, knobs in family.VARIANTS.items()
}
VARIANT_NAMES: tuple[str, ...] = tuple(_VARIANTS)


def _family(name: Any) -> ModuleType:
    if name not in _FAMILIES:
        raise ConfigError(f"unknown model {name!r} in model.name; choose one of: {', '.join(MODEL_NAMES)}")
    return _FAMILIES[name]


def _resolve(model: Mapping[str, Any]) -> tuple[ModuleType, dict[str, Any]]:
    """Family and default-filled knobs of `model`, with name, keys and each field checked."""
    values = dict(model.items())
    family = _family(values.get("name"))
    unknown = sorted(set(values) - set(family.DEFAULTS) - {"name"})
    if unknown:
        raise ConfigError(
            f"model has unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for family {values['name']!r}; valid keys: name, {', '.join(family.DEFAULTS)}"
        )
    cfg = {**family.DEFAULTS, **values}
    for key, rule in family.KINDS.items():
        check_value(f"model.{key}", cfg[key], rule)
    return family, cfg


def default_model_config(name: str) -> ml_collections.ConfigDict:
    """Every knob of family `name` with its default, plus "name"; None knobs are typed placeholders."""
    family = _family(name)
    cfg: dict[str, Any] = {"name": name}
    for key, value in family.DEFAULTS.items():
        cfg[key] = default_value(value, family.KINDS[key])
    return ml_collections.ConfigDict(cfg)


def older_run_knobs(name: str) -> dict[str, Any]:
    """Every knob of family `name` as a run recorded before the knob existed used it: the default, or the family's
    OLDER_RUNS value where a later default changed the model (e.g. ViT's fused_qkv)."""
    return {**default_model_config(name).to_dict(), **getattr(_family(name), "OLDER_RUNS", {})}


def variant_config(variant: str) -> ml_collections.ConfigDict:
    """The full model config of a named architecture, e.g. "resnet50", "vit-b/16", "vgg16", "convnext-t"."""
    key = variant.lower()
    if key not in _VARIANTS:
        close = difflib.get_close_matches(key, VARIANT_NAMES, n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else f"variants: {', '.join(VARIANT_NAMES)}"
        raise ConfigError(f"unknown model variant {variant!r}; {hint} (`scaling models list` prints them all)")
    cfg = default_model_config(_VARIANTS[key]["name"])
    cfg.update(_VARIANTS[key])
    return cfg


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model config checked once for an image shape and a class count: builds, describes and counts it."""

    family: ModuleType
    knobs: dict[str, Any]  # default-filled
    image_shape: tuple[int, int, int]
    num_classes: int

    def build(self, rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> nnx.Module:
        """The NNX module; `dtype` is the computation dtype (parameters stay float32)."""
        return self.family.build(self.knobs, image_shape=self.image_shape, num_classes=self.num_classes, rngs=rngs,
                                 dtype=dtype)

    def counts(self) -> Counts:
        """Analytic parameters (all, and the head's) and forward multiply-adds per image."""
        return self.family.count(self.knobs, self.image_shape, self.num_classes)


def validate_model_config(model: Mapping[str, Any], *, image_shape: tuple[int, int, int],
                          num_classes: int) -> ModelSpec:
    """The checked model; ConfigError naming the field and the fix if `model` cannot be built for this data."""
    if not (is_valid(image_shape, "ints") and len(image_shape) == 3):
        raise ConfigError(f"image_shape must be three positive integers (height, width, channels), got {image_shape!r}")
    check_value("num_classes", num_classes, "int")
    family, cfg = _resolve(model)
    family.check(cfg, tuple(image_shape))
    return ModelSpec(family, cfg, tuple(image_shape), num_classes)


def build_model(model: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
                rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> nnx.Module:
    """Check `model`, then build it; `dtype` is the computation dtype (params stay float32)."""
    return validate_model_config(model, image_shape=image_shape, num_classes=num_classes).build(rngs, dtype)


def partition_rules(model: Mapping[str, Any]) -> PartitionRules:
    """The tensor-parallel rules of `model`'s family (empty for families without tensor parallelism)."""
    return _family(model.get("name")).PARTITION_RULES


def count_params(model: nnx.Module) -> int:
    """Number of nnx.Param scalars (BatchNorm statistics excluded); works on nnx.eval_shape models."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


def describe_model(model: Mapping[str, Any]) -> str:
    """One-line human summary of a model config, e.g. 'resnet-18 basic width 64 stages (2,2,2,2) stem imagenet'."""
    family, cfg = _resolve(model)
    return family.describe(cfg)


def model_counts(model: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters (all, and the head's) and forward multiply-adds per image of `model`."""
    return validate_model_config(model, image_shape=image_shape, num_classes=num_classes).counts()
