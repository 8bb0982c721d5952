"""The one result a report leads with: the frontier law with intervals, the compute-optimal exponents with
intervals, and the law's predicted y at `extrapolation` times the largest compute. Degenerate results (see
analysis.degenerate) are never chosen; when nothing is supported, the headline says so and why. A prediction
below the evaluation set's resolution (one example in n) is said to be one that no run could measure."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.backtest import Backtest
from analysis.bootstrap import Estimate
from analysis.frontier import Allocation
from analysis.numbers import number, with_interval
from analysis.request import FittedLaw
from analysis.table.contract import EVAL_EXAMPLES, EVAL_SPLIT_METRICS
from analysis.validate import positive_column

ALLOCATION_ORDER = ("IsoFLOP", "parametric", "envelope")  # by the first word of the approach's name


@dataclasses.dataclass(frozen=True)
class Headline:
    """The chosen law and frontier (None: none is supported, `why` says so) and the law's prediction."""

    law: FittedLaw | None
    law_why: str
    allocation: Allocation | None
    allocation_why: str
    largest: float  # the largest x (compute) of the table; NaN without a law
    extrapolation: float
    predicted: Estimate | None  # the law's y at `at` (None without a law)
    resolution: float | None = None  # 1/n of the largest evaluation set where y is counted on it, else None

    @property
    def at(self) -> float:
        """The compute the prediction is made at."""
        return self.largest * self.extrapolation


def choose_headline(laws: Sequence[FittedLaw], allocations: Sequence[Allocation],
                    problems: Mapping[str, tuple[str, ...]], backtest: Backtest | None, frame: pd.DataFrame,
                    extrapolation: float) -> Headline:
    """The best law of one input (by backtest rank, else as listed) and the first frontier of IsoFLOP,
    parametric, envelope that are not degenerate; the law's y at `extrapolation` times the largest x of the
    table (its compute), with its interval."""
    ranks = {row.law: row.rank for row in backtest.rows} if backtest else {}
    candidates = sorted((law for law in laws if len(law.request.x) == 1),
                        key=lambda law: ranks.get(law.fit.law.name) or math.inf)
    law = next((law for law in candidates if not problems.get(law.fit.law.name)), None)
    if law is None:
        law_why = _unsupported("law", [(c.fit.law.name, problems.get(c.fit.law.name, ())) for c in candidates])
    elif ranks.get(law.fit.law.name):
        better = [c.fit.law.name for c in candidates[: candidates.index(law)]]
        law_why = f"backtest rank {ranks[law.fit.law.name]} of {sum(1 for r in ranks.values() if r)}" + (
            f"; the better-ranked law{'s' if len(better) > 1 else ''} of one input, {', '.join(better)}, "
            f"{'is' if len(better) == 1 else 'are'} degenerate"
            if better else "")
    else:
        law_why = "the first law listed that is not degenerate (not ranked by a backtest)"
    ordered = sorted(allocations, key=lambda part: ALLOCATION_ORDER.index(part.method.split(" ")[0]))
    allocation = next((part for part in ordered if not problems.get(part.method)), None)
    allocation_why = (f"the first of {', '.join(ALLOCATION_ORDER)} that is not degenerate" if allocation else
                      _unsupported("compute-optimal frontier",
                                   [(part.method, problems.get(part.method, ())) for part in ordered]))
    largest = float(positive_column(frame, law.request.x[0]).max()) if law else math.nan
    return Headline(law=law, law_why=law_why, allocation=allocation, allocation_why=allocation_why, largest=largest,
                    extrapolation=extrapolation,
                    predicted=_prediction(law, largest * extrapolation) if law else None,
                    resolution=_resolution(frame, law.request.y) if law else None)


def _resolution(frame: pd.DataFrame, y: str) -> float | None:
    """One example's share of the largest evaluation set, where `y` is an error counted on it and the table
    says the set's size; else None."""
    if y not in EVAL_SPLIT_METRICS or EVAL_EXAMPLES not in frame.columns:
        return None
    sizes = pd.to_numeric(frame[EVAL_EXAMPLES], errors="coerce").to_numpy(dtype=np.float64)
    sizes = sizes[np.isfinite(sizes) & (sizes >= 1)]
    return 1.0 / float(sizes.max()) if sizes.size else None


def _prediction(law: FittedLaw, at: float) -> Estimate:
    """The law's y at `at` with the bootstrap's pointwise interval (NaN bounds without one)."""
    value = float(law.fit.predict(np.array([at]))[0])
    if law.boot is None or len(next(iter(law.boot.samples.values()))) < 2:
        return Estimate(value, math.nan, math.nan)
    low, high = law.boot.band(np.array([at]))
    return Estimate(value, float(low[0]), float(high[0]))


def _unsupported(what: str, judged: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    """Why no `what` is supported: each candidate's problems."""
    if not judged:
        return f"no {what} could be fitted (see the warnings)"
    reasons = "; ".join(f"{name}: {', '.join(found)}" for name, found in judged)
    return f"no {what} is supported by these data: every one is degenerate ({reasons})"


def headline_text(headline: Headline, y: str, compute: str) -> list[str]:
    """The headline as sentences (for the page and the terminal)."""
    lines = []
    if headline.law:
        fit = headline.law.fit
        params = (headline.law.boot.params() if headline.law.boot else
                  {name: Estimate(value, math.nan, math.nan) for name, value in fit.params.items()})
        values = ", ".join(f"{name} = {with_interval(estimate)}" for name, estimate in params.items())
        lines.append(f"Frontier law: {fit.law.name}, {fit.law.formula} with {values} ({headline.law_why}).")
        lines.append(f"Predicted {y} at {compute} = {number(headline.at)} ({headline.extrapolation:g}x the largest, "
                     f"{number(headline.largest)}): {with_interval(headline.predicted)}.")
        if headline.resolution and headline.predicted and headline.predicted.value < headline.resolution:
            lines.append(f"That prediction is below one example of the evaluation set (1/"
                         f"{round(1 / headline.resolution)} = {number(headline.resolution)}): no run evaluated "
                         f"there could measure it; read it as the trend's continuation, not a forecast.")
    else:
        lines.append(f"Frontier law: {headline.law_why}.")
    if headline.allocation:
        part = headline.allocation
        lines.append(f"Compute-optimal allocation ({part.method}): N_opt ∝ C^{with_interval(part.n_exponent)}, "
                     f"D_opt ∝ C^{with_interval(part.d_exponent)} ({headline.allocation_why}).")
    else:
        lines.append(f"Compute-optimal allocation: {headline.allocation_why}.")
    return lines
