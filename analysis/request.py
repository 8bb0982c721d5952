"""A law to fit to a results table: which columns, which rows, which options (with the random-guess
constant some laws hold fixed, read off the table); and the fit with its intervals."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.bootstrap import DEFAULT_CONFIDENCE, Bootstrap, bootstrap
from analysis.errors import AnalysisError
from analysis.fit import DEFAULT_HUBER_DELTA, Fit, fit_law, prepare
from analysis.laws import Law
from analysis.points import select_points
from analysis.table.contract import require_columns
from analysis.validate import positive_column


@dataclasses.dataclass(frozen=True)
class FitRequest:
    """Fit `law` to y(x) over the `points` rows of a table (see analysis.points)."""

    law: Law
    x: tuple[str, ...]
    y: str
    points: str
    weights: str | None = None
    huber_delta: float = DEFAULT_HUBER_DELTA
    constants: Mapping[str, float] = dataclasses.field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    starts: int | None = None  # starting values per parameter (None: the law's full grid)

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows this fit uses, after checking that x and y are finite and positive in every row. A table with
        one row per run (no step, no is_final column, run ids unique or absent) is its own set of final rows."""
        require_columns(frame, [*self.x, self.y, *([self.weights] if self.weights else [])],
                        f"fitting {self.law.name}")
        for column in (*self.x, self.y):
            positive_column(frame, column)
        if self.points == "final" and one_row_per_run(frame):
            return frame.reset_index(drop=True)
        if self.points == "final" and not {"is_final", "step"} & set(frame.columns):
            raise AnalysisError(
                f"fitting {self.law.name} to each run's final row needs an is_final or a step column, and the "
                "table has neither while some run_id repeats; fit every row with --points all, or map the "
                "columns with --columns is_final=COLUMN (or step=COLUMN)")
        return select_points(frame, self.points, self.x[0], self.y)

    def check(self, frame: pd.DataFrame) -> None:
        """Everything `fit` would refuse about this request on `frame` (columns, values, bounds, constants, too
        few points), found without fitting."""
        x, y, options = self._data(self.rows(frame))
        prepare(self.law.with_bounds(self.bounds) if self.bounds else self.law, x, y, **options)

    def fit(self, rows: pd.DataFrame) -> Fit:
        """Fit the law to `rows` (already selected by `rows`)."""
        x, y, options = self._data(rows)
        return fit_law(self.law, x, y, bounds=self.bounds, starts=self.starts, **options)

    def _data(self, rows: pd.DataFrame) -> tuple[tuple[np.ndarray, ...], np.ndarray, dict[str, Any]]:
        """x, y and the keyword options that `fit_law` and `prepare` share, from `rows`."""
        options = {
            "weights": rows[self.weights].to_numpy(dtype=np.float64) if self.weights else None,
            "huber_delta": self.huber_delta, "constants": self.constants, "x_names": self.x, "y_name": self.y,
            "labels": rows["run_id"].to_numpy() if "run_id" in rows.columns else None,
        }
        x = tuple(rows[column].to_numpy(dtype=np.float64) for column in self.x)
        return x, rows[self.y].to_numpy(dtype=np.float64), options


@dataclasses.dataclass(frozen=True)
class FittedLaw:
    """A request, its fit on the table's rows and (if asked for) the bootstrap of that fit."""

    request: FitRequest
    rows: pd.DataFrame
    fit: Fit
    boot: Bootstrap | None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings of the fit and of its bootstrap."""
        return self.fit.warnings + (self.boot.warnings if self.boot else ())


def fit_request(request: FitRequest, frame: pd.DataFrame, *, resamples: int = 0, by_run: bool = False,
                seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> FittedLaw:
    """Fit `request` on `frame`, with a bootstrap of `resamples` resamples (of rows, or of runs if `by_run`)."""
    rows = request.rows(frame)
    fit = request.fit(rows)
    boot = None
    if resamples:
        if by_run:
            require_columns(rows, ["run_id"], "resampling runs")
        groups = rows["run_id"].to_numpy() if by_run else None
        boot = bootstrap(fit, resamples, seed=seed, groups=groups, confidence=confidence)
    return FittedLaw(request=request, rows=rows, fit=fit, boot=boot)


def chance_level(frame: pd.DataFrame, y: str) -> float | None:
    """y of a uniform random guess over the table's K classes (the constant the Rosenfeld and M4 laws hold
    fixed): 1 - k/K for top-k error (k = 5 for columns named top5*, else 1), ln K for *loss columns; None if
    the table or the column's name does not say."""
    if "num_classes" not in frame.columns or not ("error" in y or "loss" in y):
        return None
    classes = pd.to_numeric(frame["num_classes"], errors="coerce").dropna().unique()
    if classes.size > 1:
        counts = [int(k) if float(k).is_integer() else float(k) for k in sorted(classes.tolist())]
        raise AnalysisError(
            f"the table mixes datasets with {counts} classes, whose random-guess {y} differs; fit one class count "
            f"at a time: --where num_classes={counts[0]} (`scaling report` writes one report per class count by "
            "itself), or pass --random-guess")
    top = 5.0 if "top5" in y else 1.0
    if classes.size == 0 or classes[0] <= top:
        return None
    return math.log(classes[0]) if "loss" in y else 1.0 - top / float(classes[0])


def one_row_per_run(frame: pd.DataFrame) -> bool:
    """Whether the table holds one row per run: no step and no is_final column, and run ids unique (or absent),
    as in a table of published results with one line per model."""
    if {"is_final", "step"} & set(frame.columns):
        return False
    return "run_id" not in frame.columns or not frame["run_id"].duplicated().any()
