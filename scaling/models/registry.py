"""Model families by name: default configs, validation, building, parameter counts and summaries.

Each family module declares DEFAULTS (knob -> default), KINDS (knob -> "int", "float", "fraction",
"bool", "ints", optionally suffixed "|None", or a tuple of allowed strings), VARIANTS (named
architectures: variant name -> knobs) and check/build/describe/count functions.
"""

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx
from ml_collections import config_dict

from scaling.errors import ConfigError
from scaling.models import alexnet, bit, convnext, resnet, vgg, vit
from scaling.models.counting import Counts

_FAMILIES: dict[str, ModuleType] = {
    "resnet": resnet, "vit": vit, "bit": bit, "alexnet": alexnet, "vgg": vgg, "convnext": convnext,
}
MODEL_NAMES: tuple[str, ...] = tuple(_FAMILIES)
_VARIANTS: dict[str, dict[str, Any]] = {
    variant: {"name": name, **knobs} for name, family in _FAMILIES.items() for variant, knobs in family.VARIANTS.items()
}
VARIANT_NAMES: tuple[str, ...] = tuple(_VARIANTS)


def _positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < math.inf


def _positive_ints(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(map(_positive_int, value))


def _fraction(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value < 1


_KIND_RULES: dict[str, tuple[Callable[[Any], bool], str, type]] = {
    "int": (_positive_int, "a positive integer", int),
    "float": (_positive_number, "a positive number", float),
    "fraction": (_fraction, "a number in [0, 1)", float),
    "bool": (lambda value: isinstance(value, bool), "True or False", bool),
    "ints": (_positive_ints, "a non-empty sequence of positive integers", tuple),
}


def _family(name: Any) -> ModuleType:
    if name not in _FAMILIES:
        raise ConfigError(f"unknown model {name!r} in model.name; choose one of: {', '.join(MODEL_NAMES)}")
    return _FAMILIES[name]


def _check_field(key: str, value: Any, kind: str | tuple[str, ...]) -> None:
    if isinstance(kind, tuple):
        if value not in kind:
            raise ConfigError(f"model.{key} must be one of: {', '.join(kind)}; got {value!r}")
        return
    base, _, nullable = kind.partition("|")
    if nullable and value is None:
        return
    accepts, what, _ = _KIND_RULES[base]
    if not accepts(value):
        raise ConfigError(f"model.{key} must be {what}{' or None' if nullable else ''}, got {value!r}")


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
    for key, kind in family.KINDS.items():
        _check_field(key, cfg[key], kind)
    return family, cfg


def default_model_config(name: str) -> ml_collections.ConfigDict:
    """Every knob of family `name` with its default, plus "name"; None knobs are typed placeholders."""
    family = _family(name)
    cfg: dict[str, Any] = {"name": name}
    for key, value in family.DEFAULTS.items():
        kind = family.KINDS[key]
        cfg[key] = config_dict.placeholder(_KIND_RULES[kind.partition("|")[0]][2]) if value is None else value
    return ml_collections.ConfigDict(cfg)


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


def validate_model_config(model: Mapping[str, Any], *, image_shape: tuple[int, int, int],
                          num_classes: int) -> None:
    """Raise ConfigError naming the field and the fix if `model` cannot be built for this data."""
    if not (isinstance(image_shape, (list, tuple)) and len(image_shape) == 3 and all(map(_positive_int, image_shape))):
        raise ConfigError(f"image_shape must be three positive integers (height, width, channels), got {image_shape!r}")
    if not _positive_int(num_classes):
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    family, cfg = _resolve(model)
    family.check(cfg, tuple(image_shape))


def build_model(model: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
                rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> nnx.Module:
    """Validate `model`, then build it; `dtype` is the computation dtype (params stay float32)."""
    validate_model_config(model, image_shape=image_shape, num_classes=num_classes)
    family, cfg = _resolve(model)
    return family.build(cfg, image_shape=tuple(image_shape), num_classes=num_classes, rngs=rngs, dtype=dtype)


def count_params(model: nnx.Module) -> int:
    """Number of nnx.Param scalars (BatchNorm statistics excluded); works on nnx.eval_shape models."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


def describe_model(model: Mapping[str, Any]) -> str:
    """One-line human summary of a model config, e.g. 'resnet-18 basic width 64 stages (2,2,2,2) stem imagenet'."""
    family, cfg = _resolve(model)
    return family.describe(cfg)


def model_counts(model: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters (all, and the head's) and forward multiply-adds per image of `model`."""
    validate_model_config(model, image_shape=image_shape, num_classes=num_classes)
    family, cfg = _resolve(model)
    return family.count(cfg, tuple(image_shape), num_classes)
