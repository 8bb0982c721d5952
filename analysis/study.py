"""Everything the plots and the report show, computed once: law fits with intervals, the three frontiers,
the backtest, which of them are degenerate, the headline, and the predict-then-verify check of the frontier law.
A part that cannot be computed from the table is skipped with a warning saying why."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from analysis.backtest import Backtest, backtest, default_cutoff
from analysis.bootstrap import resample_runs
from analysis.data_axis import DataAxis, fit_data_axis, split_data_axis
from analysis.degenerate import allocation_problems, law_problems
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
from analysis.headline import Headline, choose_headline
from analysis.numbers import number
from analysis.points import final_rows
from analysis.request import FitRequest, FittedLaw, fit_request
from analysis.table.load import Results
from analysis.validate import positive_column
from analysis.verify import Verification, verify

T = TypeVar("T")
EXTRAPOLATION = 10.0  # every figure extrapolates, and the headline predicts, this factor beyond the largest compute


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """How much to compute: bootstrap size and what it resamples (None: whole runs wherever the rows carry run
    ids, else rows), seed, confidence, IsoFLOP budgets, backtest cut-off, extrapolation factor, and the
    predict-then-verify check: whether to run it and its (column, cut-off) (None: as the backtest cuts)."""

    resamples: int = 200
    by_run: bool | None = None
    seed: int = 0
    confidence: float = 0.95
    budgets: Sequence[float] | None = None
    tolerance: float = DEFAULT_TOLERANCE
    cutoff: float | None = None
    with_backtest: bool = True
    extrapolation: float = EXTRAPOLATION
    with_verification: bool = True
    verify_below: tuple[str, float] | None = None


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
    problems: dict[str, tuple[str, ...]]  # why each law (by name) or frontier (by method) is degenerate
    headline: Headline
    extrapolation: float
    verification: Verification | None  # the frontier law fitted below a cut-off, checked above it
    verification_note: str  # how its cut-off was chosen, or why it was not done ("": not asked for)
    data_axis: DataAxis | None  # the runs on smaller training subsets and their law (None: one training set)
    warnings: tuple[str, ...]

    @property
    def frontier(self) -> FittedLaw | None:
        """The law drawn as the frontier against compute: the headline's, else the first of one input."""
        return frontier_law(self.headline, self.laws, self.problems)

    @property
    def joint(self) -> FittedLaw | None:
        """The law of model and data size drawn and used for the parametric frontier."""
        return chosen_law(self.laws, self.problems, inputs=2)


def frontier_law(headline: Headline, laws: Sequence[FittedLaw],
                 problems: dict[str, tuple[str, ...]]) -> FittedLaw | None:
    """The headline's law, else the first of one input (drawn, and checked, as the frontier against compute)."""
    return headline.law or chosen_law(laws, problems, inputs=1)


def chosen_law(laws: Sequence[FittedLaw], problems: dict[str, tuple[str, ...]], inputs: int) -> FittedLaw | None:
    """The first of `laws` with that many inputs that is not degenerate, else the first with that many inputs."""
    candidates = [law for law in laws if len(law.request.x) == inputs]
    return next((law for law in candidates if not problems.get(law.fit.law.name)), next(iter(candidates), None))


def run_study(results: Results, y: str, requests: Sequence[FitRequest], options: StudyOptions) -> Study:
    """Fit every request (with bootstrap), compute the frontiers and, if asked, the backtest; where the runs trained
    on several training-set sizes, all that on the largest, and the data axis's law on the rest."""
    warnings = list(results.warnings)
    frame, axis_rows, split = split_data_axis(results.frame, options.tolerance)
    results = dataclasses.replace(results, frame=frame)

    def attempt(what: str, compute: Callable[[], T]) -> T | None:
        try:
            return compute()
        except AnalysisError as error:
            warnings.append(f"skipped {what}: {error}")
            return None

    fitted = [attempt(f"law {request.law.name}", lambda request=request: _fit(request, frame, options))
              for request in requests]
    laws = tuple(law for law in fitted if law is not None)
    problems = {law.fit.law.name: law_problems(law) for law in laws}
    for law in laws:
        warnings.extend(law.warnings)
    envelope = attempt("the envelope frontier", lambda: envelope_frontier(
        frame, y, resamples=options.resamples, seed=options.seed, confidence=options.confidence))
    flops = attempt("FLOPs per example", lambda: flops_model(frame))
    isoflop = attempt("the IsoFLOP frontier", lambda: isoflop_frontier(
        frame, y, flops, budgets=options.budgets, tolerance=options.tolerance, resamples=options.resamples,
        seed=options.seed, confidence=options.confidence)) if flops else None
    joint = chosen_law(laws, problems, inputs=2)
    parametric = attempt("the parametric frontier", lambda: parametric_frontier(
        joint.fit, flops, np.geomspace(*_compute_range(frame), 24), boot=joint.boot,
        confidence=options.confidence)) if joint and flops else None
    allocations = [part for part in (envelope and envelope.allocation, isoflop and isoflop.allocation, parametric)
                   if part is not None]
    for part in allocations:
        warnings.extend(part.warnings)
        inherited = problems[joint.fit.law.name] if part is parametric else ()
        problems[part.method] = allocation_problems(part, inherited)
    tested = attempt("the backtest", lambda: backtest(requests, frame, cutoff=options.cutoff)) \
        if options.with_backtest and requests else None
    if tested is not None:
        warnings.extend(tested.warnings)
    warnings.extend(f"{name}: degenerate ({'; '.join(found)}); not used as the headline"
                    for name, found in problems.items() if found)
    headline = choose_headline(laws, allocations, problems, tested, frame, options.extrapolation)
    verification, note = None, ""
    if options.with_verification:
        verification, note = _verification(frontier_law(headline, laws, problems), frame, options)
        if verification is None:
            warnings.append(f"skipped the predict-then-verify check: {note}")
    data_axis = None
    if axis_rows is not None and split is not None:
        guess = next((request.constants["random_guess"] for request in requests
                      if "random_guess" in request.constants), None)
        data_axis = fit_data_axis(axis_rows, split, y, guess, resamples=options.resamples,
                                  by_run=_by_run(axis_rows, options), seed=options.seed,
                                  confidence=options.confidence)
        warnings.extend(data_axis.warnings)
    return Study(results=results, y=y, laws=laws, envelope=envelope, isoflop=isoflop, parametric=parametric,
                 flops=flops, backtest=tested, problems=problems, headline=headline,
                 extrapolation=options.extrapolation, verification=verification, verification_note=note,
                 data_axis=data_axis, warnings=tuple(warnings))


def _verification(law: FittedLaw | None, frame: pd.DataFrame,
                  options: StudyOptions) -> tuple[Verification | None, str]:
    """The frontier law fitted below the cut-off and checked above it, and how the cut-off was chosen; or None
    and why the check cannot be done."""
    if law is None:
        return None, "no law of one input was fitted"
    if options.resamples < 2:
        return None, "the bootstrap is off (--bootstrap 0), so there are no prediction intervals to check"
    request, what = law.request, law.request.law.name
    try:
        column, cutoff, basis = verify_cutoff(request, frame, options)
        what = f"{what} fitted where {column} < {number(cutoff)} ({basis})"
        return verify(request, frame, column=column, cutoff=cutoff, resamples=options.resamples,
                      by_run=_by_run(request.rows(frame), options), seed=options.seed,
                      confidence=options.confidence), basis
    except AnalysisError as error:
        return None, f"{what}: {error}"


def verify_cutoff(request: FitRequest, frame: pd.DataFrame, options: StudyOptions) -> tuple[str, float, str]:
    """The column and cut-off of the predict-then-verify check, and how they were chosen: --verify-below's;
    else the backtest's (the user's --cutoff, or the top quarter of the table's log-compute range held out,
    or of the law's own points' range where the table's leaves the law no point on one side)."""
    if options.verify_below is not None:
        column, cutoff = options.verify_below
        return column, cutoff, "given by --verify-below"
    column = "compute" if "compute" in frame.columns else request.x[0]
    if options.cutoff is not None:
        return column, options.cutoff, "the backtest's cut-off, given by --cutoff"
    common = default_cutoff(positive_column(frame, column))
    own = request.rows(frame)[column].to_numpy(dtype=np.float64)
    own = own[np.isfinite(own) & (own > 0)]
    if ((own < common).any() and (own >= common).any()) or np.unique(own).size < 2:
        return column, common, f"the backtest's cut-off: the top quarter of the table's log-{column} range held out"
    return column, default_cutoff(own), (f"the top quarter of the law's own points' log-{column} range held out, as "
                                         "the backtest does where the table's cut-off leaves a law no point above")


def _fit(request: FitRequest, frame: pd.DataFrame, options: StudyOptions) -> FittedLaw:
    """Fit one request with its bootstrap, resampling whole runs unless told otherwise or the rows have no run id."""
    return fit_request(request, frame, resamples=options.resamples, by_run=_by_run(request.rows(frame), options),
                       seed=options.seed, confidence=options.confidence)


def _by_run(rows: pd.DataFrame, options: StudyOptions) -> bool:
    """Whether the bootstrap of a fit to `rows` resamples whole runs: as the options say, else wherever the rows
    carry run ids."""
    return resample_runs(rows["run_id"].to_numpy() if "run_id" in rows.columns else None, options.by_run)


def _compute_range(frame: pd.DataFrame) -> tuple[float, float]:
    """Smallest and largest final compute of the table's runs."""
    compute = final_rows(frame)["compute"].to_numpy(dtype=np.float64)
    return float(np.min(compute)), float(np.max(compute))
