"""The figures of an analysis, drawn from a Study and written as PNG, SVG and PDF."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from analysis.errors import AnalysisError
from analysis.plots.allocation import has_allocations, optimal_allocation
from analysis.plots.curves import error_vs_compute, error_vs_data, error_vs_params, error_vs_train_examples
from analysis.plots.isoflop import isoflop_curves
from analysis.plots.style import FORMATS, paper_style, save
from analysis.plots.verify import predicted_vs_observed
from analysis.study import Study

NOT_APPLICABLE = ""  # a figure of a part the table was not designed for (a data axis): left out without a warning
# name -> (draw, why it cannot be drawn: None if it can)
FIGURES: dict[str, tuple[Callable[[Study], Figure], Callable[[Study], str | None]]] = {
    "error_vs_compute": (error_vs_compute, lambda study: None),
    "isoflop": (isoflop_curves, lambda study: None if study.isoflop else "no IsoFLOP frontier (see above)"),
    "error_vs_data": (error_vs_data, lambda study: _needs(study, "params", "examples_seen")),
    "error_vs_params": (error_vs_params, lambda study: _needs(study, "params", "examples_seen")),
    "error_vs_train_examples": (error_vs_train_examples, lambda study: None if study.data_axis else NOT_APPLICABLE),
    "optimal_allocation": (optimal_allocation,
                           lambda study: None if has_allocations(study) else "no frontier could be computed"),
    "predicted_vs_observed": (predicted_vs_observed,
                              lambda study: None if study.verification else "no predict-then-verify check (see above)"),
}


def draw_figures(study: Study, out_dir: Path,
                 formats: Sequence[str] = FORMATS) -> tuple[dict[str, list[Path]], list[str]]:
    """Write every figure the study supports; return the files by figure and a warning per figure skipped."""
    written, skipped = {}, []
    with paper_style():
        for name, (draw, missing) in FIGURES.items():
            try:
                reason = missing(study)
                if reason is None:
                    written[name] = save(draw(study), Path(out_dir), name, formats)
            except AnalysisError as error:
                reason = str(error)
            if reason:  # NOT_APPLICABLE is no reason to warn
                skipped.append(f"skipped figure {name}: {reason}")
    return written, skipped


def _needs(study: Study, *columns: str) -> str | None:
    absent = [column for column in columns if column not in study.results.frame.columns]
    return f"the table has no column(s) {absent}" if absent else None
