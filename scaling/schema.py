"""One mechanism for allowed values: every config key has a rule, and `check_value` checks any key against it.

A rule is a kind, optionally suffixed "|None" (None is allowed too), or a tuple of the allowed strings.
Kinds: "int" (positive), "count" (integer >= 0), "axis" (positive or -1), "float" (positive), "number"
(>= 0), "fraction" ([0, 1)), "portion" ((0, 1]), "magnitude" ([0, 10]), "bool", "str", and sequences
"ints" (non-empty, positive), "portions", "strs". The base config declares each key with its default
and rule (`scaling.config.defaults.FIELDS`), each model family its knobs' rules (its KINDS); a bad
value raises ConfigError naming the key, what it must be, and the value.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import ml_collections
from ml_collections import config_dict

from scaling.errors import ConfigError

Rule = str | tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Kind:
    """The values a kind accepts, how messages name them, and the type of a None default's placeholder."""

    what: str
    type: type
    accepts: Callable[[Any], bool]


class Field(NamedTuple):
    """A config key's default and rule; `note` explains special values in messages, e.g. "0: off"."""

    default: Any
    rule: Rule
    note: str = ""


def _number(kind_type: type, what: str, inside: Callable[[Any], bool]) -> Kind:
    base = numbers.Integral if kind_type is int else numbers.Real
    return Kind(what, kind_type,
                lambda value: isinstance(value, base) and not isinstance(value, bool) and inside(value))


def _sequence(item: Kind, what: str, min_length: int = 0) -> Kind:
    return Kind(what, tuple, lambda value: isinstance(value, (list, tuple)) and len(value) >= min_length
                and all(map(item.accepts, value)))


_INT = _number(int, "a positive integer", lambda value: value > 0)
_PORTION = _number(float, "a number in (0, 1]", lambda value: 0 < value <= 1)
_STR = Kind("a string", str, lambda value: isinstance(value, str))

_KINDS: dict[str, Kind] = {
    "int": _INT,
    "count": _number(int, "an integer >= 0", lambda value: value >= 0),
    "axis": _number(int, "a positive integer or -1", lambda value: value > 0 or value == -1),
    "float": _number(float, "a positive number", lambda value: 0 < value < math.inf),
    "number": _number(float, "a number >= 0", lambda value: 0 <= value < math.inf),
    "fraction": _number(float, "a number in [0, 1)", lambda value: 0 <= value < 1),
    "portion": _PORTION,
    "magnitude": _number(float, "a number in [0, 10]", lambda value: 0 <= value <= 10),
    "bool": Kind("True or False", bool, lambda value: isinstance(value, bool)),
    "str": _STR,
    "ints": _sequence(_INT, "a non-empty sequence of positive integers", min_length=1),
    "portions": _sequence(_PORTION, "a sequence of numbers in (0, 1]"),
    "strs": _sequence(_STR, "a sequence of strings"),
}


def is_valid(value: Any, rule: Rule) -> bool:
    """Whether `value` follows `rule`."""
    if isinstance(rule, tuple):
        return value in rule
    kind, _, nullable = rule.partition("|")
    return (bool(nullable) and value is None) or _KINDS[kind].accepts(value)


def _describe(rule: Rule) -> str:
    """What `rule` allows, e.g. "a positive integer or None", "one of 'cls' or 'gap'"."""
    if isinstance(rule, tuple):
        quoted = [repr(choice) for choice in rule]
        return "one of " + (f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0])
    kind, _, nullable = rule.partition("|")
    return _KINDS[kind].what + (" or None" if nullable else "")


def check_value(path: str, value: Any, rule: Rule, note: str = "") -> None:
    """Raise ConfigError naming `path`, what `rule` allows and `value`, unless `value` follows `rule`."""
    if not is_valid(value, rule):
        raise ConfigError(f"{path} must be {_describe(rule)}{f' ({note})' if note else ''}, got {value!r}")


def check_fields(values: Any, fields: Mapping[str, Field], under: str = "") -> None:
    """Check every field of `fields` whose dotted path starts with `under` in `values` (a ConfigDict or
    mapping whose keys are relative to `under`), in declaration order."""
    for path, field in fields.items():
        if path.startswith(under):
            value = values
            for name in path.removeprefix(under).split("."):
                value = value[name]
            check_value(path, value, field.rule, field.note)


def default_value(default: Any, rule: Rule) -> Any:
    """`default`, or when it is None a placeholder typed by `rule`'s kind (so overrides are cast and typed)."""
    return config_dict.placeholder(_KINDS[rule.partition("|")[0]].type) if default is None else default


def config_from(fields: Mapping[str, Field]) -> ml_collections.ConfigDict:
    """A nested ConfigDict holding every field's default under its dotted path."""
    config = ml_collections.ConfigDict()
    for path, field in fields.items():
        *parents, leaf = path.split(".")
        node = config
        for name in parents:
            if name not in node:
                node[name] = ml_collections.ConfigDict()
            node = node[name]
        node[leaf] = default_value(field.default, field.rule)
    return config
