"""Everything the plots and the report show, computed once: law fits with intervals, the three frontiers
and the backtest. A part that cannot be computed from the table is skipped with a warning saying why."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from analysis.backtest import Backtest, backtest
from analysis.errors import AnalysisError
from analysis.frontier import (
    Allocation,
    Envelope,
    FlopsModel,
    IsoFlop,
    envelope_frontier,
    flops_model,
    isoflop_frontier,
    parametric_frontier,
)
from analysis.frontier.isoflop import DEFAULT_TOLERANCE
from analysis.points import final_rows
from analysis.request import FitRequest, FittedLaw, fit_request
from analysis.table.load import Results

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """How much to compute: bootstrap size, seed, confidence, IsoFLOP budgets, backtest cut-off."""

    resamples: int = 200
    by_run: bool = False
    seed: int = 0
    confidence: float = 0.95
    budgets: Sequence[float] | None = None
    tolerance: float = DEFAULT_TOLERANCE
    cutoff: float | None = None
    with_backtest: bool = True


@dataclasses.dataclass(frozen=True)
class Study:
    """The results of a table's analysis; parts that could not be computed are None (see warnings)."""

    results: Results
    y: str
    laws: tuple[FittedLaw, ...]
    envelope: Envelope | None
    isoflop: IsoFlop | None
    parametric: Allocation | None
    flops: FlopsModel | None
    backtest: Backtest | None
    warnings: tuple[str, ...]

    @property
    def frontier(self) -> FittedLaw | None:
        """The first fitted law of one input (drawn as the frontier against compute)."""
        return first_law(self.laws, inputs=1)

    @property
    def joint(self) -> FittedLaw | None:
        """The first fitted law of model and data size."""
        return first_law(self.laws, inputs=2)


def first_law(laws: Sequence[FittedLaw], inputs: int) -> FittedLaw | None:
    """The first of `laws` with that many inputs, if any."""
    return next((law for law in laws if len(law.request.x) == inputs), None)


def run_study(results: Results, y: str, requests: Sequence[FitRequest], options: StudyOptions) -> Study:
    """Fit every request (with bootstrap), compute the frontiers and, if asked, the backtest."""
    frame, warnings = results.frame, list(results.warnings)

    def attempt(what: str, compute: Callable[[], T]) -> T | None:
        try:
            return compute()
        except AnalysisError as error:
            warnings.append(f"skipped {what}: {error}")
            return None

    fitted = [attempt(f"law {request.law.name}", lambda request=request: fit_request(
        request, frame, resamples=options.resamples, by_run=options.by_run, seed=options.seed,
        confidence=options.confidence)) for request in requests]
    laws = tuple(law for law in fitted if law is not None)
    for law in laws:
        warnings.extend(law.warnings)
    envelope = attempt("the envelope frontier", lambda: envelope_frontier(
        frame, y, resamples=options.resamples, seed=options.seed, confidence=options.confidence))
    flops = attempt("FLOPs per example", lambda: flops_model(frame))
    isoflop = attempt("the IsoFLOP frontier", lambda: isoflop_frontier(
        frame, y, flops, budgets=options.budgets, tolerance=options.tolerance, resamples=options.resamples,
        seed=options.seed, confidence=options.confidence)) if flops else None
    joint = first_law(laws, inputs=2)
    parametric = attempt("the parametric frontier", lambda: parametric_frontier(
        joint.fit, flops, np.geomspace(*_compute_range(frame), 24), boot=joint.boot,
        confidence=options.confidence)) if joint and flops else None
    for part in (envelope, isoflop):
        if part is not None:
            warnings.extend(part.allocation.warnings)
    if parametric is not None:
        warnings.extend(parametric.warnings)
    tested = attempt("the backtest", lambda: backtest(requests, frame, cutoff=options.cutoff)) \
        if options.with_backtest and requests else None
    if tested is not None:
        warnings.extend(tested.warnings)
    return Study(results=results, y=y, laws=laws, envelope=envelope, isoflop=isoflop, parametric=parametric,
                 flops=flops, backtest=tested, warnings=tuple(warnings))


def _compute_range(frame: pd.DataFrame) -> tuple[float, float]:
    """Smallest and largest final compute of the table's runs."""
    compute = final_rows(frame)["compute"].to_numpy(dtype=np.float64)
    return float(np.min(compute)), float(np.max(compute))
