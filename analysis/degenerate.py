"""Which results the data do not support: a fitted law or a frontier exponent is degenerate when

- a parameter sits at a bound: within AT_BOUND of it, measured as a fraction of the bounded range for a
  parameter bounded on both sides, and in the fit's scaled units (the data's geometric means) for one bounded
  on one side; a parameter beyond 1/AT_BOUND scaled units has run off to infinity;
- its bootstrap interval spans more than MAX_SPAN (a decade): high/low > 10 for an interval of one sign,
  compared on |value| for a negative one; an interval that contains 0 has an undetermined sign and spans
  more than any number of decades. Scale parameters (those whose value depends on the data's units) are
  compared in the fit's scaled units, i.e. where the data pin them, not at x = 1;
- it rests on fewer than MIN_SIZES distinct model sizes (the `params` of its rows; a frontier's distinct
  optimal sizes).

A degenerate result is never the headline; its figure and the warnings box say why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from analysis.bootstrap import Estimate
from analysis.frontier import Allocation
from analysis.laws import Law
from analysis.numbers import number
from analysis.request import FittedLaw

AT_BOUND = 1e-3
MAX_SPAN = 10.0
MIN_SIZES = 3
SIZE_COLUMN = "params"


def law_problems(fitted: FittedLaw) -> tuple[str, ...]:
    """Why `fitted` is degenerate (empty: it is not): parameters at a bound, intervals wider than a decade,
    fewer than 3 model sizes."""
    fit, law = fitted.fit, fitted.fit.law
    scaled = scaled_params(law, fit.params, fit.setup.x_scales, fit.setup.y_scale)
    problems = [f"{param.name} {side}" for param in law.params
                if (side := bound_side(param.low, param.high, float(scaled[param.name]))) is not None]
    if fitted.boot is not None and len(next(iter(fitted.boot.samples.values()))) >= 2:
        samples = scaled_params(law, fitted.boot.samples, fit.setup.x_scales, fit.setup.y_scale)
        intervals = fitted.boot.params()
        for param in law.params:
            span = interval_span(fitted.boot.interval(samples[param.name], float(scaled[param.name])))
            if span is not None:
                shown = intervals[param.name]
                where = "" if param.unit_free else " (judged at the data's scale)"
                problems.append(f"{param.name} interval [{number(shown.low)}, {number(shown.high)}] {span}{where}")
    sizes = distinct_sizes(fitted)
    if sizes is not None and sizes < MIN_SIZES:
        problems.append(f"rests on {sizes} model size{'s' if sizes != 1 else ''} (< {MIN_SIZES})")
    return tuple(problems)


def allocation_problems(allocation: Allocation, inherited: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Why a frontier's exponents are degenerate: fewer than 3 distinct optimal sizes, an exponent interval
    wider than a decade or of undetermined sign, and the problems of the law it was read from (`inherited`)."""
    problems = [f"from a degenerate law ({problem})" for problem in inherited]
    sizes = np.unique(np.round(np.log(allocation.n_opt), 6)).size
    if sizes < MIN_SIZES:
        problems.append(f"N_opt from {sizes} distinct model size{'s' if sizes != 1 else ''} (< {MIN_SIZES})")
    for name, exponent in (("N_opt", allocation.n_exponent), ("D_opt", allocation.d_exponent)):
        span = interval_span(exponent)
        if span is not None:
            problems.append(f"{name} exponent interval [{number(exponent.low)}, {number(exponent.high)}] {span}")
    return tuple(problems)


def bound_side(low: float, high: float, value: float) -> str | None:
    """'at its lower bound 0', 'at its upper bound 5', 'ran off to infinity', or None (inside the bounds);
    `value` in the fit's scaled units."""
    if math.isfinite(low) and math.isfinite(high):
        fraction = (value - low) / (high - low)
        return (f"at its lower bound {number(low)}" if fraction < AT_BOUND else
                f"at its upper bound {number(high)}" if fraction > 1.0 - AT_BOUND else None)
    for bound, distance, side in ((low, value - low, "lower"), (high, high - value, "upper")):
        if math.isfinite(bound):
            if distance < AT_BOUND:
                return f"at its {side} bound {number(bound)}"
            if distance > 1.0 / AT_BOUND:
                return "ran off to infinity"
    return None


def interval_span(estimate: Estimate) -> str | None:
    """Why an interval spans more than a decade ('spans 31x (> 10x)', 'contains 0 (sign undetermined)'), or
    None when it spans less or there is no interval."""
    low, high = estimate.low, estimate.high
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low <= 0.0 <= high:
        return "contains 0 (sign undetermined)"
    ratio = max(abs(low), abs(high)) / min(abs(low), abs(high))
    return f"spans {number(ratio)}x (> {MAX_SPAN:g}x)" if ratio > MAX_SPAN else None


def distinct_sizes(fitted: FittedLaw) -> int | None:
    """Distinct model sizes among the rows a law was fitted to; None when the rows do not say."""
    if SIZE_COLUMN not in fitted.rows.columns:
        return None
    return int(fitted.rows[SIZE_COLUMN].nunique())


def scaled_params(law: Law, params: Mapping[str, np.ndarray | float], x_scales: tuple[float, ...],
                  y_scale: float) -> dict[str, np.ndarray]:
    """Parameters (data units) in the fit's scaled units: unit-free ones as they are, scale parameters divided
    by what the law's conversion multiplies them by (every law here converts them by a factor)."""
    free = {param.name: np.asarray(params[param.name], dtype=np.float64) for param in law.params}
    ones = {param.name: (free[param.name] if param.unit_free else np.ones_like(free[param.name]))
            for param in law.params}
    factors = law.to_data_units(ones, x_scales, y_scale)
    return {name: value if param.unit_free else value / np.asarray(factors[name], dtype=np.float64)
            for (name, value), param in zip(free.items(), law.params)}
