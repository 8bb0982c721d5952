"""Fits, frontiers, backtests and whole studies as JSON-ready records; and those records as plain text."""

from __future__ import annotations

import math
from typing import Any

from analysis.backtest import Backtest
from analysis.bootstrap import Estimate
from analysis.frontier import Allocation
from analysis.request import FittedLaw
from analysis.study import Study


def study_record(study: Study) -> dict[str, Any]:
    """Everything the report shows, as plain data: the table, the fitted laws, the frontiers, the backtest."""
    parts = (study.envelope and study.envelope.allocation, study.isoflop and study.isoflop.allocation,
             study.parametric)
    return {
        "table": study.results.source, "y": study.y, "rows": len(study.results.frame),
        "dropped_rows": study.results.dropped, "where": list(study.results.where),
        "unselected_rows": study.results.unselected,
        "zero_errors": study.results.zero_errors.record() if study.results.zero_errors else None,
        "laws": [law_record(fitted) for fitted in study.laws],
        "frontiers": [allocation_record(part) for part in parts if part is not None],
        "isoflop_budgets": [
            {"budget": p.budget, "runs": len(p.params), "n_opt": p.n_opt, "y_opt": p.y_opt, "problem": p.problem}
            for p in (study.isoflop.parabolas if study.isoflop else ())
        ],
        "flops_per_example": None if study.flops is None else {
            "coefficient": study.flops.coefficient, "exponent": study.flops.exponent},
        "backtest": backtest_record(study.backtest) if study.backtest else None,
        "warnings": list(study.warnings),
    }


def law_record(fitted: FittedLaw) -> dict[str, Any]:
    """A fitted law with its parameters, derived quantities, intervals and warnings."""
    fit, boot, request = fitted.fit, fitted.boot, fitted.request
    params = boot.params() if boot else {
        name: Estimate(value, math.nan, math.nan) for name, value in fit.params.items()}
    derived = boot.derived() if boot else {
        item.name: Estimate(float(item.value(fit.params)), math.nan, math.nan) for item in fit.law.derived}
    return {
        "law": fit.law.name, "formula": fit.law.formula, "source": fit.law.source,
        "x": list(request.x), "y": request.y, "points": request.points, "num_points": fit.num_points,
        "constants": fit.setup.constants, "huber_delta": fit.setup.huber_delta, "loss": fit.loss,
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


def backtest_record(result: Backtest) -> dict[str, Any]:
    """The backtest's cut-off and its rows, best first."""
    return {
        "cutoff": result.cutoff, "column": result.column, "metric": "RMSE of log y on the points above the cut-off",
        "rows": [{"law": row.law, "points": row.points, "train_points": row.train_points,
                      "test_points": row.test_points,
                      "rmse_log": row.rmse_log, "rank": row.rank, "note": row.note} for row in result.rows],
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
    values = ", ".join(f"{name}={estimate['value']:.4g}" for name, estimate in record["params"].items())
    return f"{record['law']}: {record['formula']} with {values} ({record['status']}, {record['num_points']} points)"


def format_law(record: dict[str, Any]) -> str:
    """A fitted law as a small text table."""
    boot = record["bootstrap"]
    level = f"{boot['confidence']:.0%} interval" if boot else "interval"
    lines = [
        f"{record['law']}: {record['formula']}",
        f"  source: {record['source']}",
        f"  fitted to {record['num_points']} {record['points']} points of {record['y']} vs {', '.join(record['x'])}; "
        f"Huber loss {record['loss']:.4g} (delta {record['huber_delta']:g}), {record['status']} after "
        f"{record['evaluations']} evaluations, best of {record['starts']} starts",
    ]
    if boot:
        lines.append(f"  bootstrap over {boot['resampled']}: {boot['converged']} of {boot['resamples']} refits "
                     "converged")
    lines.append(f"  {'parameter':<12}{'value':>14}   {level}")
    for name, estimate in record["params"].items():
        lines.append(f"  {name:<12}{estimate['value']:>14.5g}   {_interval(estimate)}")
    for name, estimate in record["derived"].items():
        lines.append(f"  {name:<12}{estimate['value']:>14.5g}   {_interval(estimate)}   {estimate['meaning']}")
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def format_backtest(record: dict[str, Any], y: str) -> str:
    """The backtest as a text table, best law first."""
    lines = [f"backtest: fitted where {record['column']} <= {record['cutoff']:.4g}, scored above it "
             f"(RMSE of log {y})",
             f"  {'rank':<6}{'law':<12}{'points':<10}{'train':>6}{'test':>6}{'RMSE(log)':>12}  note"]
    for row in record["rows"]:
        rank = str(row["rank"]) if row["rank"] else "-"
        rmse = f"{row['rmse_log']:.4g}" if math.isfinite(row["rmse_log"]) else "n/a"
        lines.append(f"  {rank:<6}{row['law']:<12}{row['points']:<10}{row['train_points']:>6}{row['test_points']:>6}"
                     f"{rmse:>12}  {row['note'] or ''}")
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def format_allocation(record: dict[str, Any]) -> str:
    """A frontier's exponents, with intervals, on one line."""
    def exponent(estimate: dict[str, float]) -> str:
        interval = "" if math.isnan(estimate["low"]) else f" [{estimate['low']:.3f}, {estimate['high']:.3f}]"
        return f"{estimate['value']:.3f}{interval}"

    return (f"{record['method']}: N_opt ∝ C^{exponent(record['n_exponent'])}, "
            f"D_opt ∝ C^{exponent(record['d_exponent'])} ({record['optima']} optima)")


def _interval(estimate: dict[str, float]) -> str:
    if math.isnan(estimate["low"]):
        return "(no interval)"
    return f"[{estimate['low']:.5g}, {estimate['high']:.5g}]"


def _meaning(fitted: FittedLaw, name: str) -> str:
    return next(item.meaning for item in fitted.fit.law.derived if item.name == name)
