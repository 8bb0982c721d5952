"""How numbers are shown, in every figure, table and page: three significant digits, one helper.
Records (JSON) keep full precision; only what a person reads is rounded."""

from __future__ import annotations

import math
from collections.abc import Mapping

DIGITS = 3  # significant digits of every number shown


def number(value: float | None, digits: int = DIGITS) -> str:
    """`value` with `digits` significant digits (1.23e+15, 0.452, 12.3); '—' for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}g}"


def count(value: float) -> str:
    """A count (examples, parameters) exactly, with thousands separators: 1,281,167."""
    return f"{round(value):,}"


def interval(estimate: Mapping[str, float] | object, missing: str = "—") -> str:
    """'[low, high]' of an estimate (a record dict or an Estimate), or `missing` when it has no interval."""
    low, high = (estimate["low"], estimate["high"]) if isinstance(estimate, Mapping) else \
        (estimate.low, estimate.high)  # type: ignore[attr-defined]
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return missing
    return f"[{number(low)}, {number(high)}]"


def with_interval(estimate: Mapping[str, float] | object) -> str:
    """'value [low, high]', or the value alone when there is no interval."""
    value = estimate["value"] if isinstance(estimate, Mapping) else estimate.value  # type: ignore[attr-defined]
    bounds = interval(estimate, missing="")
    return f"{number(value)} {bounds}".rstrip()
