"""A study as one JSON-ready record: the table, the fitted laws, the frontiers and the backtest."""

from __future__ import annotations

from typing import Any

from analysis.study import Study
from analysis.summary import allocation_record, backtest_record, law_record


def study_record(study: Study) -> dict[str, Any]:
    """Everything the report shows, as plain data."""
    parts = (study.envelope and study.envelope.allocation, study.isoflop and study.isoflop.allocation,
             study.parametric)
    return {
        "table": study.results.source, "y": study.y, "rows": len(study.results.frame),
        "dropped_rows": study.results.dropped,
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
