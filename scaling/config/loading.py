"""Loading config files (`path.py[:arg]`), parsing and setting their argument, and `--config.a.b=v` overrides."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import ml_collections

from scaling.config.defaults import FIELDS, KEY_ALIASES, apply_dataset_defaults
from scaling.errors import ConfigError

T = TypeVar("T")


def load_config(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """Load `configs/x.py[:arg]`, call its `get_config(arg)`, apply `a.b=value` overrides, then decide the keys
    left to the dataset (`apply_dataset_defaults`: resolution, normalisation, image-size model knobs)."""
    path_text, _, arg = spec.partition(":")
    module = import_file(path_text, "config", "configs/<name>.py[:key=value,...]", ("get_config",))
    config = run_file_code(path_text, "config", lambda: module.get_config(arg or None))
    _check_base(config, path_text)
    for override in overrides:
        apply_override(config, override)
    apply_dataset_defaults(config)
    return config


def _check_base(config: Any, path_text: str) -> None:
    """get_config() returned a ConfigDict holding every key of the base config."""
    fix = "start from scaling.config.defaults.base_config(family)"
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"get_config() in {path_text} must return an ml_collections.ConfigDict ({fix}), "
                          f"got a {type(config).__name__}")
    missing = [path for path in (*FIELDS, "model.name") if not _has_key(config, path.split("."))]
    if missing:
        raise ConfigError(f"get_config() in {path_text} returns a config without {len(missing)} key(s) of the base "
                          f"config, e.g. {', '.join(missing[:3])}; {fix}")


def _has_key(node: Any, names: list[str]) -> bool:
    return not names or (isinstance(node, ml_collections.ConfigDict) and names[0] in node
                         and _has_key(node[names[0]], names[1:]))


def import_file(path_text: str, kind: str, usage: str, required: tuple[str, ...]) -> ModuleType:
    """Import a Python file by path, checking that it exists and defines the `required` names."""
    path = Path(path_text)
    if path.is_dir():
        raise ConfigError(f"{kind} file {path_text!r} is a folder; pass {usage}")
    if not path.is_file():
        raise ConfigError(f"{kind} file {path_text!r} does not exist; pass {usage}")
    if path.suffix != ".py":
        raise ConfigError(f"{kind} file {path_text!r} is not a Python file: {kind} files are .py files defining "
                          f"{', '.join(required)}; pass {usage}")
    module_spec = importlib.util.spec_from_file_location(f"_scaling_{kind}_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    run_file_code(path_text, kind, lambda: module_spec.loader.exec_module(module))
    missing = [name for name in required if not hasattr(module, name)]
    if missing:
        raise ConfigError(f"{kind} file {path_text!r} defines no {', '.join(missing)}; see {usage}")
    return module


def run_file_code(path_text: str, kind: str, code: Callable[[], T]) -> T:
    """Run code of a user's config or sweep file (importing it, its get_config or get_grid): a syntax error or
    exception other than ConfigError becomes one ConfigError naming the file, the line and the exception's text."""
    try:
        return code()
    except ConfigError:
        raise
    except SyntaxError as error:
        inside = "" if _is_file(error.filename, path_text) else f" (in {error.filename}, which it imports)"
        raise ConfigError(f"{kind} file {path_text} has a Python syntax error at line {error.lineno}{inside}: "
                          f"{error.msg}; fix that line") from None
    except Exception as error:
        own = [frame for frame in traceback.extract_tb(error.__traceback__) if _is_file(frame.filename, path_text)]
        at = f" at line {own[-1].lineno} ({_frame_name(own[-1].name)})" if own else ""
        text = f": {error}" if str(error) else ""
        raise ConfigError(f"{kind} file {path_text} raised {type(error).__name__}{at}{text}; fix the file") from None


def _is_file(filename: str | None, path_text: str) -> bool:
    return filename is not None and Path(filename).resolve() == Path(path_text).resolve()


def _frame_name(name: str) -> str:
    return "while being imported" if name == "<module>" else f"in {name}()"


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
    if key in KEY_ALIASES and leaf not in node:
        raise ConfigError(f"unknown key {key!r}: the config calls it {KEY_ALIASES[key]}; use "
                          f"--config.{KEY_ALIASES[key]}={text}")
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
