"""A sweep's data axis: runs on nested training subsets of several sizes (the `train_examples` column).

The compute laws and frontiers assume every run draws on the same training set, so a table whose runs trained
on several subset sizes is split: the runs on the largest training set are the compute study; the runs on
smaller subsets at one compute budget, with the largest set's runs of the same model sizes there, are the data
axis, a grid of model size by training-set size to which Rosenfeld et al. 2020's joint form is fitted on
(params, train_examples)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.degenerate import law_problems
from analysis.errors import AnalysisError
from analysis.frontier.isoflop import DEFAULT_TOLERANCE
from analysis.laws.rosenfeld import ROSENFELD
from analysis.numbers import count, number
from analysis.points import final_rows
from analysis.request import FitRequest, FittedLaw, fit_request

COLUMN = "train_examples"
X = ("params", COLUMN)


@dataclasses.dataclass(frozen=True)
class DataAxis:
    """The data axis of a table: its final rows, the subset sizes, and the law fitted to them (None: not fitted,
    `warnings` say why); `problems` say why that fit is degenerate (empty: it is not)."""

    rows: pd.DataFrame
    split: str  # how the table was split into the compute study and this axis
    sizes: tuple[float, ...]
    law: FittedLaw | None
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def split_data_axis(frame: pd.DataFrame,
                    tolerance: float = DEFAULT_TOLERANCE) -> tuple[pd.DataFrame, pd.DataFrame | None, str | None]:
    """The rows of the compute study, the final rows of the data axis (None: the runs all trained on one
    training-set size, or the table does not say) and a note of the split (None: no split). The data axis is one
    compute budget's grid: the runs on smaller subsets at the largest compute any of them reached (within
    `tolerance`), and the largest set's runs of the same model sizes at that compute."""
    if COLUMN not in frame.columns:
        return frame, None, None
    sizes = pd.to_numeric(frame[COLUMN], errors="coerce")
    largest = sizes.max()
    smaller = (sizes < largest).to_numpy()
    if not smaller.any():
        return frame, None, None
    compute = frame[~smaller].reset_index(drop=True)
    subset_final, full_final = final_rows(frame[smaller].reset_index(drop=True)), final_rows(compute)
    note = (f"the table has runs on {pd.unique(sizes.dropna()).size} training-set sizes: the compute laws, "
            f"frontiers and backtest use the runs on the largest ({count(largest)} examples); the data axis is ")
    subset_log, full_log = _log_compute(subset_final), _log_compute(full_final)
    if not np.isfinite(subset_log).any():
        return compute, pd.concat([subset_final, full_final], ignore_index=True), note + "every run's final row"
    top = np.nanmax(subset_log)
    width = np.log1p(tolerance)
    at_top = subset_final[np.abs(subset_log - top) <= width]
    alongside = full_final[np.abs(full_log - top) <= width]
    if "params" in frame.columns:  # the grid: the largest set's runs of the model sizes the subsets trained
        alongside = alongside[alongside["params"].isin(at_top["params"])]
    note += (f"the {len(at_top)} runs on smaller subsets at {number(float(np.exp(top)))} FLOPs with the "
             f"{len(alongside)} runs on the largest set there")
    if len(at_top) < len(subset_final):
        note += (f"; {len(subset_final) - len(at_top)} runs on smaller subsets at lower or unknown compute are in "
                 "neither (--by train_examples gives each subset size a report of its own)")
    return compute, pd.concat([at_top, alongside], ignore_index=True), note


def _log_compute(rows: pd.DataFrame) -> np.ndarray:
    """log of each row's compute; NaN where the table has no compute or a value that is not positive."""
    if "compute" not in rows.columns:
        return np.full(len(rows), np.nan)
    compute = pd.to_numeric(rows["compute"], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(compute > 0, np.log(compute), np.nan)


def fit_data_axis(axis: pd.DataFrame, split: str, y: str, random_guess: float | None, *, resamples: int,
                  by_run: bool, seed: int, confidence: float) -> DataAxis:
    """Fit Rosenfeld et al.'s form on (params, train_examples) to the data axis's final rows, with the
    bootstrap; a fit that cannot be made is left out with a warning saying why."""
    sizes = tuple(sorted(float(size) for size in pd.unique(axis[COLUMN])))
    if random_guess is None:
        return DataAxis(axis, split, sizes, None, (),
                        (f"skipped the data axis's {ROSENFELD.name} fit: the random-guess value of {y} is unknown "
                         "(pass --random-guess)",))
    request = FitRequest(law=ROSENFELD, x=X, y=y, points="final", constants={"random_guess": random_guess})
    try:
        fitted = fit_request(request, axis, resamples=resamples, by_run=by_run, seed=seed, confidence=confidence)
    except AnalysisError as error:
        return DataAxis(axis, split, sizes, None, (), (f"skipped the data axis's {ROSENFELD.name} fit: {error}",))
    problems = law_problems(fitted)
    warnings = tuple(f"data axis: {warning}" for warning in fitted.warnings)
    if problems:
        warnings += (f"data axis {ROSENFELD.name} fit: degenerate ({'; '.join(problems)}); not a result",)
    return DataAxis(axis, split, sizes, fitted, problems, warnings)
