"""A fitted law's prediction at chosen inputs, with two bootstrap intervals: a confidence interval of the law's
value there (percentiles of the refitted laws), and a prediction interval for the y one new run would show (each
refitted law's log prediction plus every log residual of the fit, so the runs' own scatter is included: the
bootstrap prediction interval of Davison and Hinkley 1997, section 6.3.3, with residuals inflated by sqrt(n/(n-p))
for the parameters fitted)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.errors import AnalysisError
from analysis.laws import predict
from analysis.request import FitRequest, FittedLaw

WIDE = 10.0  # an interval whose high end is more than this times its low end is not a usable prediction


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The law's y at inputs `at`, with the confidence interval of that value (`low`, `high`) and the prediction
    interval of one run's observed y (`run_low`, `run_high`); NaN bounds without a bootstrap."""

    at: dict[str, float]  # x column -> value
    value: float
    low: float
    high: float
    run_low: float
    run_high: float
    beyond: float  # largest ratio of an input to the largest value of that input fitted (> 1: extrapolated)

    def record(self) -> dict[str, Any]:
        """The prediction as a dict (for JSON)."""
        return dataclasses.asdict(self)


def parse_at(text: str, request: FitRequest) -> tuple[float, ...]:
    """`--at` text, `COLUMN=VALUE[,COLUMN=VALUE]`, as the request's inputs in order. A name is one of the request's
    x columns or the law's symbol for that input (x, N, D); every input needs a positive value."""
    law = request.law
    names = {**{column: index for index, column in enumerate(request.x)},
             **{symbol: index for index, symbol in enumerate(law.inputs)}}
    wanted = ",".join(f"{column}=VALUE" for column in request.x)
    values: dict[int, float] = {}
    for item in text.split(","):
        name, sep, number = (part.strip() for part in item.partition("="))
        if not sep or not name or not number:
            raise AnalysisError(f"bad --at {text!r}: write --at {wanted} (comma-separated, one per input)")
        if name not in names:
            raise AnalysisError(f"--at {text!r}: {law.name} takes {', '.join(request.x)} (or {', '.join(law.inputs)}), "
                                f"not {name!r}; write --at {wanted}")
        try:
            value = float(number)
        except ValueError:
            raise AnalysisError(f"--at {text!r}: {number!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise AnalysisError(f"--at {text!r}: {name} must be a positive number (laws are fitted in log space)")
        values[names[name]] = value
    missing = [column for index, column in enumerate(request.x) if index not in values]
    if missing:
        raise AnalysisError(f"--at {text!r}: {law.name} needs {len(request.x)} input(s), {', '.join(request.x)}; "
                            f"{', '.join(missing)} is missing: write --at {wanted}")
    return tuple(values[index] for index in range(len(request.x)))


def predict_at(fitted: FittedLaw, points: Sequence[Sequence[float]]) -> list[Prediction]:
    """The fitted law's prediction at each point (one value per input), with its intervals."""
    request, fit, boot = fitted.request, fitted.fit, fitted.boot
    x = [np.array([point[index] for point in points], dtype=np.float64) for index in range(len(request.x))]
    values = fit.predict(*x)
    largest = [float(fitted.rows[column].max()) for column in request.x]
    beyond = np.max([values_x / top for values_x, top in zip(x, largest)], axis=0)
    nan = np.full(len(values), np.nan)
    low, high, run_low, run_high = nan, nan, nan, nan
    if boot is not None and len(next(iter(boot.samples.values()))) >= 2:
        columns = {name: samples[:, None] for name, samples in boot.samples.items()}
        log_curves = np.log(predict(fit.law, columns, [values_x[None, :] for values_x in x], fit.setup.constants))
        tail = (1.0 - boot.confidence) / 2.0
        low, high = np.exp(np.nanquantile(log_curves, [tail, 1.0 - tail], axis=0))
        residuals = log_residuals(fitted)
        run = [np.nanquantile((column[:, None] + residuals[None, :]).ravel(), [tail, 1.0 - tail])
               for column in log_curves.T]
        run_low, run_high = np.exp(np.array(run).T)
    return [Prediction(at={column: float(values_x[index]) for column, values_x in zip(request.x, x)},
                       value=float(values[index]), low=float(low[index]), high=float(high[index]),
                       run_low=float(run_low[index]), run_high=float(run_high[index]), beyond=float(beyond[index]))
            for index in range(len(values))]


def log_residuals(fitted: FittedLaw) -> np.ndarray:
    """log y - log(fitted law) on the fitted rows, times sqrt(n/(n-p)) so that their spread is not understated
    by the p parameters fitted to them."""
    request, rows = fitted.request, fitted.rows
    predicted = fitted.fit.predict(*(rows[column].to_numpy(dtype=np.float64) for column in request.x))
    residuals = np.log(rows[request.y].to_numpy(dtype=np.float64)) - np.log(predicted)
    n, p = len(residuals), len(fitted.fit.law.params)
    return residuals * math.sqrt(n / max(n - p, 1))


def prediction_warnings(fitted: FittedLaw, predictions: Sequence[Prediction]) -> list[str]:
    """Why some predictions should not be quoted: a degenerate fit (its own warnings) or an interval wider
    than a factor WIDE."""
    warnings = list(fitted.warnings)
    wide = [p for p in predictions if math.isfinite(p.low) and p.high > WIDE * p.low]
    if wide:
        warnings.append(f"{fitted.fit.law.name}: the {_level(fitted)} interval spans more than a factor {WIDE:g} at "
                        f"{len(wide)} of {len(predictions)} point(s) ({_inputs(wide[0].at)}): the data do not pin "
                        "the prediction down there")
    return warnings


def format_predictions(fitted: FittedLaw, predictions: Sequence[Prediction]) -> str:
    """The predictions as a small text table under a line saying what was fitted."""
    request, fit = fitted.request, fitted.fit
    largest = ", ".join(f"{column} {fitted.rows[column].max():.3g}" for column in request.x)
    level = _level(fitted)
    lines = [f"{fit.law.name}: {fit.law.formula}, fitted to {fit.num_points} {request.points} points of "
             f"{request.y} (largest {largest})",
             f"  {'at':<34}{request.y:>12}   {level + ' interval of the law':<28}{level + ' interval of one run':<28}"
             "beyond the data"]
    for item in predictions:
        lines.append(f"  {_inputs(item.at):<34}{item.value:>12.4g}   {_pair(item.low, item.high):<28}"
                     f"{_pair(item.run_low, item.run_high):<28}{item.beyond:.3g}x")
    lines.extend(f"  warning: {warning}" for warning in prediction_warnings(fitted, predictions))
    return "\n".join(lines)


def _level(fitted: FittedLaw) -> str:
    return f"{fitted.boot.confidence:.0%}" if fitted.boot else "no"


def _pair(low: float, high: float) -> str:
    return f"[{low:.4g}, {high:.4g}]" if math.isfinite(low) else "-"


def _inputs(at: dict[str, float]) -> str:
    return ",".join(f"{column}={value:.4g}" for column, value in at.items())
