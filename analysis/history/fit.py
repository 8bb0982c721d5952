"""Trends in the history of ImageNet error, fitted with the analysis' own fitter (Huber loss on log
residuals, L-BFGS from a grid of starts) and bootstrap (resampled models):

- error against time: the power law E = a·T^(-b) in T = e^(t - 2010), i.e. log E falls linearly with the
  year t; the error halves every ln 2 / b years;
- error against training compute C: E = a·C^(-b); each halving of the error costs 2^(1/b) times the compute;
- both at once (algorithmic progress): E = a·C^(-b)·e^(-g·(t - 2010)); at a fixed error the compute needed
  falls by e^(g/b) per year, i.e. halves every 12·ln 2·b/g months (compare Erdil & Besiroglu 2022).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from analysis.bootstrap import Bootstrap, Estimate, bootstrap
from analysis.errors import AnalysisError
from analysis.fit import Fit, fit_law
from analysis.history.table import GROUP_LABELS, fit_rows
from analysis.laws import POWER, Law, Param
from analysis.laws.base import Params, log_grid
from analysis.points import select_points

YEAR_ORIGIN = 2010.0
# Log errors of models of similar date or compute scatter by ~0.1-0.2: quadratic loss within 0.1, linear
# beyond (robust to the odd outlier). The results-table default, 1e-3, would make this a pure L1 fit.
HISTORY_HUBER_DELTA = 0.1
TIME_COLUMN = "time_factor"  # e^(decimal_year - YEAR_ORIGIN): a positive input whose log is the year
_POINTS = {"records": "record-setting rows", "all": "rows", "envelope": "rows beating every cheaper one"}
ERDIL_BESIROGLU = {"halving_months": 9.0, "low": 4.0, "high": 25.0,
                   "source": "Erdil & Besiroglu 2022, 'Algorithmic progress in computer vision' (95% CI)"}


def _progress_log_predict(p: Params, log_x: Sequence[jax.Array], constants: Params) -> jax.Array:
    return jnp.log(p["a"]) - p["b"] * log_x[0] - p["g"] * log_x[1]


def _progress_data_units(p: Params, x_scales: Sequence[float], y_scale: float) -> dict[str, np.ndarray]:
    return {"a": p["a"] * y_scale * x_scales[0] ** p["b"] * x_scales[1] ** p["g"], "b": p["b"], "g": p["g"]}


PROGRESS = Law(
    name="progress",
    formula="E = a·C^(-b)·exp(-g·(t - 2010))",
    source="compute plus a steady algorithmic improvement in time, log-linear as in Erdil & Besiroglu 2022, "
    "'Algorithmic progress in computer vision'",
    inputs=("C", "T"),
    default_columns=("compute", TIME_COLUMN),
    params=(
        Param("a", 0.0, math.inf, log_grid(-2.0, 1.0, 6), "scale: E at C = 1 FLOP in 2010", unit_free=False),
        Param("b", 0.0, 5.0, (0.02, 0.05, 0.1, 0.2, 0.4), "compute exponent"),
        Param("g", -3.0, 3.0, (-0.1, 0.0, 0.05, 0.1, 0.2, 0.4), "fall of log error per year at fixed compute"),
    ),
    log_predict=_progress_log_predict,
    to_data_units=_progress_data_units,
)


@dataclasses.dataclass(frozen=True)
class Trend:
    """One fitted trend: which rows, the fit, its bootstrap and its headline numbers with intervals."""

    name: str  # "time", "compute" or "progress"
    group: str
    y: str
    points: str  # which rows: "records", "all" or "envelope"
    rows: pd.DataFrame
    fit: Fit
    boot: Bootstrap | None
    headline: dict[str, Estimate]

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings of the fit and of its bootstrap."""
        return self.fit.warnings + (self.boot.warnings if self.boot else ())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The fitted error at compute x (compute trend) or at decimal years x (time trend)."""
        return self.fit.predict(time_factor(x) if self.name == "time" else x)


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Bootstrap size, seed and level; Huber threshold; which rows the time trends use ("records": each
    model that beat every earlier one, or "all") and which the compute trends use ("all", or "envelope": each
    model that beat every cheaper one)."""

    resamples: int = 200
    seed: int = 0
    confidence: float = 0.95
    huber_delta: float = HISTORY_HUBER_DELTA
    time_points: str = "records"
    compute_points: str = "all"


def time_factor(decimal_year: np.ndarray | pd.Series) -> np.ndarray:
    """e^(t - 2010): the time input of the power-law fitter (its log is the year)."""
    return np.exp(np.asarray(decimal_year, dtype=np.float64) - YEAR_ORIGIN)


def time_trend(rows: pd.DataFrame, y: str, group: str, options: FitOptions) -> Trend:
    """y against the date; headline: the years in which the error halves, and its fall per year."""
    points = {"records": "envelope", "all": "all"}[options.time_points]
    rows = _select(rows.assign(**{TIME_COLUMN: time_factor(rows["decimal_year"])}), TIME_COLUMN, y, points)
    fit, boot = _fit(POWER, rows, (TIME_COLUMN,), y, options)
    rate = _quantity(fit, boot, lambda p: p["b"])  # e-folds of error per year
    return Trend("time", group, y, options.time_points, rows, fit, boot, {
        "error_halving_years": _reciprocal(rate, math.log(2.0)),
        "error_factor_per_year": _monotone(rate, math.exp),
    })


def compute_trend(rows: pd.DataFrame, y: str, group: str, options: FitOptions) -> Trend:
    """y against training compute; headline: the compute factor that each halving of the error costs."""
    rows = _select(rows, "compute", y, options.compute_points)
    fit, boot = _fit(POWER, rows, ("compute",), y, options)
    exponent = _quantity(fit, boot, lambda p: p["b"])
    return Trend("compute", group, y, options.compute_points, rows, fit, boot, {
        "exponent": exponent,
        "compute_per_error_halving": _reciprocal(exponent, math.log(2.0), then=math.exp),
    })


def progress_trend(rows: pd.DataFrame, y: str, group: str, options: FitOptions) -> Trend:
    """y against compute and date at once; headline: the months in which the compute needed for a fixed
    error halves (algorithmic progress), and the effective-compute gain per year."""
    rows = rows.assign(**{TIME_COLUMN: time_factor(rows["decimal_year"])})
    fit, boot = _fit(PROGRESS, rows, ("compute", TIME_COLUMN), y, options)
    rate = _quantity(fit, boot, lambda p: p["g"] / p["b"])  # e-folds of compute saved per year
    return Trend("progress", group, y, "all", rows, fit, boot, {
        "compute_halving_months": _reciprocal(rate, 12.0 * math.log(2.0)),
        "effective_compute_per_year": _monotone(rate, math.exp),
        "compute_exponent": _quantity(fit, boot, lambda p: p["b"]),
        "error_fall_per_year_at_fixed_compute": _quantity(fit, boot, lambda p: p["g"]),
    })


def history_trends(history: pd.DataFrame, options: FitOptions) -> tuple[list[Trend], list[str]]:
    """Every trend `scaling history fit` reports: the ILSVRC winners' top-5 error against time; each group's
    top-1 error against time and against compute; algorithmic progress of ImageNet-1k-only models. A trend
    the table cannot support (too few rows) is left out with a warning saying why."""
    winners = history[history["kind"] == "ilsvrc-winner"].reset_index(drop=True)
    planned = [("ILSVRC winners against time", lambda: time_trend(winners, "top5_error", "ilsvrc-winners", options))]
    for group, label in GROUP_LABELS.items():
        planned += [
            (f"{label} against time", lambda group=group: time_trend(
                fit_rows(history, group), "top1_error", group, options)),
            (f"{label} against compute", lambda group=group: compute_trend(
                fit_rows(history, group, needs=("compute",)), "top1_error", group, options)),
        ]
    planned.append(("algorithmic progress", lambda: progress_trend(
        fit_rows(history, "imagenet-1k", needs=("compute",)), "top1_error", "imagenet-1k", options)))
    trends, skipped = [], []
    for what, fit in planned:
        try:
            trends.append(fit())
        except AnalysisError as error:
            skipped.append(f"skipped the trend of {what}: {error}")
    return trends, skipped


def trend_record(trend: Trend) -> dict:
    """A trend as a JSON-ready record."""
    params = trend.boot.params() if trend.boot else {
        name: Estimate(value, math.nan, math.nan) for name, value in trend.fit.params.items()}
    return {
        "trend": trend.name, "group": trend.group, "y": trend.y, "points": trend.points, "law": trend.fit.law.name,
        "formula": _formula(trend), "num_points": trend.fit.num_points, "models": trend.rows["model"].tolist(),
        "years": [int(trend.rows["year"].min()), int(trend.rows["year"].max())],
        "huber_delta": trend.fit.setup.huber_delta, "status": trend.fit.status,
        "params": {name: estimate.as_dict() for name, estimate in params.items()},
        "headline": {name: estimate.as_dict() for name, estimate in trend.headline.items()},
        "bootstrap": None if trend.boot is None else {
            "resamples": trend.boot.requested, "converged": len(next(iter(trend.boot.samples.values()))),
            "confidence": trend.boot.confidence},
        "warnings": list(trend.warnings),
    }


def format_trend(record: dict) -> str:
    """A trend record as a few lines of text."""
    group = GROUP_LABELS.get(record["group"], "ILSVRC winners")
    what = {"time": "against time", "compute": "against training compute",
            "progress": "against training compute and time"}[record["trend"]]
    head = record["headline"]
    exponents = ", ".join(f"{name} {_value(value, 3)}" for name, value in record["params"].items() if name != "a")
    lines = [f"{group}: {record['y']} {what}, {record['num_points']} {_POINTS[record['points']]}, "
             f"{record['years'][0]}-{record['years'][1]}",
             f"  {record['formula']}    ({exponents})"]
    if record["trend"] == "time":
        lines.append(f"  the error halves every {_value(head['error_halving_years'], 2)} years "
                     f"(x{_value(head['error_factor_per_year'], 3)} less each year)")
    elif record["trend"] == "compute":
        lines.append(f"  each halving of the error costs x{_value(head['compute_per_error_halving'], 3)} training "
                     "compute")
    else:
        lines.append(f"  at fixed error the compute needed halves every {_value(head['compute_halving_months'], 2)} "
                     f"months (x{_value(head['effective_compute_per_year'], 3)} effective compute per year from "
                     "algorithms)")
        reference = ERDIL_BESIROGLU
        lines.append(f"  {reference['source']}: {reference['halving_months']:g} months "
                     f"[{reference['low']:g}, {reference['high']:g}]")
    if record["bootstrap"]:
        boot = record["bootstrap"]
        lines.append(f"  intervals: {boot['confidence']:.0%} bootstrap over the fitted rows, {boot['converged']} of "
                     f"{boot['resamples']} refits converged")
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def _select(rows: pd.DataFrame, x: str, y: str, points: str) -> pd.DataFrame:
    return select_points(rows, points, x, y).reset_index(drop=True)


def _fit(law: Law, rows: pd.DataFrame, x: tuple[str, ...], y: str, options: FitOptions) -> tuple[Fit, Bootstrap | None]:
    fit = fit_law(law, tuple(rows[column].to_numpy(dtype=np.float64) for column in x),
                  rows[y].to_numpy(dtype=np.float64), huber_delta=options.huber_delta, x_names=x, y_name=y,
                  labels=rows["model"].to_numpy())
    boot = bootstrap(fit, options.resamples, seed=options.seed, confidence=options.confidence) \
        if options.resamples else None
    return fit, boot


def _quantity(fit: Fit, boot: Bootstrap | None, function: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> Estimate:
    """A function of the parameters with its bootstrap interval (NaN bounds without a bootstrap)."""
    if boot is not None:
        return boot.quantity(function)
    return Estimate(float(function({k: np.asarray(v) for k, v in fit.params.items()})), math.nan, math.nan)


def _monotone(estimate: Estimate, function: Callable[[float], float]) -> Estimate:
    """An increasing function of an estimate (percentile intervals map through it)."""
    return Estimate(*(function(value) if math.isfinite(value) else value
                      for value in (estimate.value, estimate.low, estimate.high)))


def _reciprocal(rate: Estimate, scale: float, then: Callable[[float], float] = lambda value: value) -> Estimate:
    """`then(scale / rate)` with its interval: a rate interval reaching 0 or below leaves the upper end infinite."""
    def invert(value: float) -> float:
        return then(scale / value) if value > 0 else math.inf

    value = invert(rate.value) if math.isfinite(rate.value) else math.nan
    if math.isnan(rate.low):
        return Estimate(value, math.nan, math.nan)
    return Estimate(value, invert(rate.high), invert(rate.low))


def _formula(trend: Trend) -> str:
    p = trend.fit.params
    if trend.name == "time":
        return f"E = {p['a']:.3g}·exp(-{p['b']:.3f}·(t - {YEAR_ORIGIN:g}))"
    if trend.name == "compute":
        return f"E = {p['a']:.3g}·C^(-{p['b']:.3f})"
    return f"E = {p['a']:.3g}·C^(-{p['b']:.3f})·exp(-{p['g']:.3f}·(t - {YEAR_ORIGIN:g}))"


def _value(estimate: dict, digits: int) -> str:
    return f"{_number(estimate['value'], digits)} {_bounds(estimate, digits)}".rstrip()


def _bounds(estimate: dict, digits: int) -> str:
    if math.isnan(estimate["low"]):
        return ""
    return f"[{_number(estimate['low'], digits)}, {_number(estimate['high'], digits)}]"


def _number(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}g}"
