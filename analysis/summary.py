"""Fits, frontiers, backtests and whole studies as JSON-ready records; and those records as plain text (numbers
shown with analysis.numbers' three significant digits; the records keep full precision)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.backtest import Backtest
from analysis.bootstrap import Estimate
from analysis.data_axis import COLUMN, DataAxis
from analysis.frontier import Allocation
from analysis.headline import Headline, headline_text
from analysis.numbers import interval, number, with_interval
from analysis.provenance import provenance
from analysis.request import FittedLaw
from analysis.study import Study


def study_record(study: Study) -> dict[str, Any]:
    """Everything the report shows, as plain data: the headline and provenance first, then the table, the fitted
    laws, the frontiers, the backtest, each law and frontier with the reasons it is degenerate (empty: it is not),
    and the predict-then-verify check (None: not done) with how its cut-off was chosen (or why it was not done)."""
    parts = (study.envelope and study.envelope.allocation, study.isoflop and study.isoflop.allocation,
             study.parametric)
    return {
        "headline": headline_record(study.headline, study.y), "provenance": provenance(study.results),
        "extrapolation": study.extrapolation, "table": study.results.source, "y": study.y,
        "rows": len(study.results.frame),
        "dropped_rows": study.results.dropped, "where": list(study.results.where),
        "unselected_rows": study.results.unselected,
        "zero_errors": study.results.zero_errors.record() if study.results.zero_errors else None,
        "laws": [{**law_record(fitted), "degenerate": list(study.problems[fitted.fit.law.name])}
                 for fitted in study.laws],
        "frontiers": [{**allocation_record(part), "degenerate": list(study.problems[part.method])}
                      for part in parts if part is not None],
        "isoflop_budgets": [
            {"budget": p.budget, "runs": len(p.params), "n_opt": p.n_opt, "y_opt": p.y_opt, "problem": p.problem}
            for p in (study.isoflop.parabolas if study.isoflop else ())
        ],
        "flops_per_example": None if study.flops is None else {
            "coefficient": study.flops.coefficient, "exponent": study.flops.exponent},
        "backtest": backtest_record(study.backtest) if study.backtest else None,
        "verification": study.verification.record() if study.verification else None,
        "verification_note": study.verification_note,
        "data_axis": None if study.data_axis is None else data_axis_record(study.data_axis, study.y),
        "warnings": list(study.warnings),
    }


def data_axis_record(axis: DataAxis, y: str) -> dict[str, Any]:
    """The data axis: how the table was split, its grid of final y by model size and training-set size, and its
    law (None: not fitted; the study's warnings say why) with the reasons it is degenerate."""
    grid = axis.rows.groupby(["params", COLUMN], sort=True)[y].mean()
    return {
        "split": axis.split, "runs": len(axis.rows), "train_examples": list(axis.sizes),
        "grid": [{"params": params, "train_examples": size, y: value} for (params, size), value in grid.items()],
        "law": None if axis.law is None else {**law_record(axis.law), "degenerate": list(axis.problems)},
    }


def headline_record(headline: Headline, y: str) -> dict[str, Any]:
    """The headline as plain data, with its sentences: the law (None: none supported, `law_why` says why), the
    frontier's exponents, the law's prediction at `extrapolation` x the largest compute."""
    law, part = headline.law, headline.allocation
    return {
        "text": headline_text(headline, y, law.request.x[0] if law else "compute"),
        "law": None if law is None else law.fit.law.name, "law_why": headline.law_why,
        "formula": None if law is None else law.fit.law.formula,
        "params": None if law is None else law_record(law)["params"],
        "frontier": None if part is None else part.method, "frontier_why": headline.allocation_why,
        "n_exponent": None if part is None else part.n_exponent.as_dict(),
        "d_exponent": None if part is None else part.d_exponent.as_dict(),
        "largest_compute": headline.largest, "extrapolation": headline.extrapolation,
        "at_compute": headline.at, "predicted": None if headline.predicted is None else headline.predicted.as_dict(),
        "eval_resolution": headline.resolution,
    }


def law_record(fitted: FittedLaw) -> dict[str, Any]:
    """A fitted law with its parameters, derived quantities, intervals and warnings; `loss` is the fit's weighted
    mean Huber loss, `loss_sum` the weighted sum that Hoffmann et al. and Epoch's replication report."""
    fit, boot, request = fitted.fit, fitted.boot, fitted.request
    params = boot.params() if boot else {
        name: Estimate(value, math.nan, math.nan) for name, value in fit.params.items()}
    derived = boot.derived() if boot else {
        item.name: Estimate(float(item.value(fit.params)), math.nan, math.nan) for item in fit.law.derived}
    return {
        "law": fit.law.name, "formula": fit.law.formula, "source": fit.law.source,
        "x": list(request.x), "y": request.y, "points": request.points, "num_points": fit.num_points,
        "constants": fit.setup.constants, "huber_delta": fit.setup.huber_delta, "loss": fit.loss,
        "loss_sum": huber_sum(fitted),
        "status": fit.status, "evaluations": fit.evaluations, "starts": fit.num_starts,
        "params": {name: estimate.as_dict() for name, estimate in params.items()},
        "meanings": {param.name: param.meaning for param in fit.law.params},
        "derived": {name: {**estimate.as_dict(), "meaning": _meaning(fitted, name)}
                    for name, estimate in derived.items()},
        "bootstrap": None if boot is None else {
            "resamples": boot.requested, "converged": len(next(iter(boot.samples.values()))),
            "confidence": boot.confidence, "resampled": boot.resampled,
        },
        "warnings": list(fitted.warnings),
    }


def huber_sum(fitted: FittedLaw) -> float:
    """The fit's Huber loss summed over its points (weighted), as Hoffmann et al. 2022 (App. D) state it: the
    fitter minimises the weighted mean, sum(w·huber) / sum(w)."""
    return fitted.fit.loss * float(np.sum(fitted.fit.setup.weights))


def loss_text(record: dict[str, Any]) -> str:
    """The fit's loss as the page and the terminal show it: the mean, and the sum the literature reports."""
    return (f"mean Huber loss {number(record['loss'])}, Huber loss (sum, as Hoffmann et al.) "
            f"{number(record['loss_sum'])} (delta {record['huber_delta']:g})")


def verification_line(record: dict[str, Any]) -> str:
    """The predict-then-verify check (a Verification's record) in one line: the cut-off and the coverage."""
    inside, total = sum(row["inside"] for row in record["rows"]), len(record["rows"])
    level = f"{record['confidence']:.0%}"
    coverage = f"{record['coverage']:.0%}" if record["coverage"] is not None and math.isfinite(record["coverage"]) \
        else "—"
    return (f"{record['law']} fitted to {record['train_points']} points with {record['column']} < "
            f"{number(record['cutoff'])}: {inside} of {total} held-out points inside their {level} prediction "
            f"interval (coverage {coverage}; nominal {level})")


def backtest_record(result: Backtest) -> dict[str, Any]:
    """The backtest's cut-off and its rows, best first."""
    return {
        "cutoff": result.cutoff, "column": result.column, "metric": "RMSE of log y on the points above the cut-off",
        "rows": [{"law": row.law, "points": row.points, "cutoff": row.cutoff, "train_points": row.train_points,
                  "test_points": row.test_points, "rmse_log": row.rmse_log, "rank": row.rank, "note": row.note}
                 for row in result.rows],
        "warnings": list(result.warnings),
    }


def allocation_record(allocation: Allocation) -> dict[str, Any]:
    """N_opt(C) and D_opt(C) exponents with intervals and coefficients."""
    return {
        "method": allocation.method, "n_exponent": allocation.n_exponent.as_dict(),
        "d_exponent": allocation.d_exponent.as_dict(), "n_coefficient": allocation.n_coefficient,
        "d_coefficient": allocation.d_coefficient, "optima": len(allocation.compute),
        "compute_range": [float(allocation.compute.min()), float(allocation.compute.max())],
        "warnings": list(allocation.warnings),
    }


def format_law_line(record: dict[str, Any]) -> str:
    """A fitted law on one line: its formula and parameter values."""
    values = ", ".join(f"{name}={number(estimate['value'])}" for name, estimate in record["params"].items())
    return f"{record['law']}: {record['formula']} with {values} ({record['status']}, {record['num_points']} points)"


def format_law(record: dict[str, Any]) -> str:
    """A fitted law as a small text table."""
    boot = record["bootstrap"]
    level = f"{boot['confidence']:.0%} interval" if boot else "interval"
    lines = [
        f"{record['law']}: {record['formula']}",
        f"  source: {record['source']}",
        f"  fitted to {record['num_points']} {record['points']} points of {record['y']} vs {', '.join(record['x'])}; "
        f"{loss_text(record)}, {record['status']} after "
        f"{record['evaluations']} evaluations, best of {record['starts']} starts",
    ]
    if boot:
        lines.append(f"  bootstrap over {boot['resampled']}: {boot['converged']} of {boot['resamples']} refits "
                     "converged")
    lines.append(f"  {'parameter':<12}{'value':>14}   {level}")
    for name, estimate in record["params"].items():
        lines.append(f"  {name:<12}{number(estimate['value']):>14}   {interval(estimate, '(no interval)')}")
    for name, estimate in record["derived"].items():
        lines.append(f"  {name:<12}{number(estimate['value']):>14}   {interval(estimate, '(no interval)')}   "
                     f"{estimate['meaning']}")
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def format_backtest(record: dict[str, Any], y: str) -> str:
    """The backtest as a text table, best law first; a law scored above its own cut-off shows it."""
    lines = [f"backtest: fitted where {record['column']} <= {number(record['cutoff'])} (or the law's own cut-off), "
             f"scored above it (RMSE of log {y})",
             f"  {'rank':<6}{'law':<12}{'points':<10}{'cut-off':>10}{'train':>6}{'test':>6}{'RMSE(log)':>12}  note"]
    for row in record["rows"]:
        rank = str(row["rank"]) if row["rank"] else "-"
        rmse = number(row["rmse_log"]) if math.isfinite(row["rmse_log"]) else "n/a"
        lines.append(f"  {rank:<6}{row['law']:<12}{row['points']:<10}{number(row['cutoff']):>10}"
                     f"{row['train_points']:>6}{row['test_points']:>6}{rmse:>12}  {row['note'] or ''}")
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def format_allocation(record: dict[str, Any]) -> str:
    """A frontier's exponents, with intervals, on one line (and why it is degenerate, if it is)."""
    degenerate = f"; DEGENERATE: {'; '.join(record['degenerate'])}" if record.get("degenerate") else ""
    return (f"{record['method']}: N_opt ∝ C^{with_interval(record['n_exponent'])}, "
            f"D_opt ∝ C^{with_interval(record['d_exponent'])} ({record['optima']} optima{degenerate})")


def _meaning(fitted: FittedLaw, name: str) -> str:
    return next(item.meaning for item in fitted.fit.law.derived if item.name == name)
