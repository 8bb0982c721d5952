"""Loading config files (`path.py[:arg]`), parsing and setting their argument, and `--config.a.b=v` overrides."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import ml_collections

from scaling.config.defaults import apply_dataset_defaults
from scaling.errors import ConfigError


def load_config(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """Load `configs/x.py[:arg]`, call its `get_config(arg)`, apply `a.b=value` overrides, then decide the keys
    left to the dataset (`apply_dataset_defaults`: resolution, normalisation, image-size model knobs)."""
    path_text, _, arg = spec.partition(":")
    module = import_file(path_text, "config", "configs/<name>.py[:key=value,...]", ("get_config",))
    config = module.get_config(arg or None)
    for override in overrides:
        apply_override(config, override)
    apply_dataset_defaults(config)
    return config


def import_file(path_text: str, kind: str, usage: str, required: tuple[str, ...]) -> ModuleType:
    """Import a Python file by path, checking that it exists and defines the `required` names."""
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"{kind} file {path_text!r} does not exist; pass {usage}")
    module_spec = importlib.util.spec_from_file_location(f"_scaling_{kind}_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    missing = [name for name in required if not hasattr(module, name)]
    if missing:
        raise ConfigError(f"{kind} file {path_text!r} defines no {', '.join(missing)}; see {usage}")
    return module


def parse_config_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
    """Parse a config file's argument `k=v,k2=v2` into the given defaults, typed like them."""
    values = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"config argument {item!r} is not key=value; valid keys: {', '.join(defaults)}")
        if key not in defaults:
            raise ConfigError(_unknown_key_message(key, "config argument", list(defaults)))
        values[key] = _coerce(parse_value(text), defaults[key], key)
    return values


def set_config_arg(section: ml_collections.ConfigDict, arg: str | None) -> None:
    """Set a config file's argument `k=v,k2=v2` on `section` (e.g. config.model), typed like its keys."""
    for key, value in parse_config_arg(arg, **section).items():
        try:
            section[key] = value
        except TypeError as error:  # a typed None placeholder, e.g. stage_sizes=abc
            raise ConfigError(f"config argument {key}={value!r} has the wrong type: {error}") from None


def apply_override(config: ml_collections.ConfigDict, override: str) -> None:
    """Set one `a.b.c=value` override on `config`, naming the field when it is unknown or mistyped."""
    key, sep, text = override.removeprefix("--config.").removeprefix("config.").partition("=")
    if not sep:
        raise ConfigError(f"override {override!r} is not --config.key=value")
    *parents, leaf = key.split(".")
    node, path = config, "config"
    for name in parents:
        if name not in node or not isinstance(node[name], ml_collections.ConfigDict):
            raise ConfigError(_unknown_key_message(name, path, list(node.keys())))
        node, path = node[name], f"{path}.{name}"
    if leaf not in node:
        raise ConfigError(_unknown_key_message(leaf, path, list(node.keys())))
    current = node[leaf]
    value = parse_value(text)
    try:
        node[leaf] = _coerce(value, current, key)
    except TypeError as error:
        raise ConfigError(f"--config.{key}={text!r} has the wrong type: {error}") from None


def parse_value(text: str) -> Any:
    """Parse a command-line value: Python literals (numbers, tuples, None, True) or a plain string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def to_json_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """A plain, JSON-serialisable dict of the config (tuples become lists)."""
    return json.loads(config.to_json_best_effort())


def _coerce(value: Any, current: Any, key: str) -> Any:
    """Match an int to a float field and a list to a tuple field; reject other type changes."""
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    if current is not None and value is not None and not isinstance(value, type(current)):
        raise ConfigError(
            f"{key} expects a {type(current).__name__} (like {current!r}), got {value!r}"
        )
    return value


def _unknown_key_message(key: str, where: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r} in {where}{hint} valid keys: {', '.join(sorted(valid))}"
