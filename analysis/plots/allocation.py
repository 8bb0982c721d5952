"""Compute-optimal model and data size against compute: the optima of each approach and their power laws."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from analysis.numbers import interval, number
from analysis.plots.style import DOUBLE, degenerate_box, label, legend_below, new_figure
from analysis.study import Study

STYLES = {  # by the first word of the approach's name
    "envelope": {"marker": ".", "color": "tab:gray", "markersize": 4},
    "IsoFLOP": {"marker": "*", "color": "tab:blue", "markersize": 9,
                "markeredgecolor": "black", "markeredgewidth": 0.5},
    "parametric": {"marker": "none", "color": "tab:red"},
}


def optimal_allocation(study: Study) -> Figure:
    """Two panels, N_opt and D_opt against compute, one colour per approach, exponents in the legend, drawn on
    to the study's extrapolation factor; degenerate approaches marked in the legend and in a red box."""
    figure, (left, right) = new_figure(DOUBLE, columns=2)
    allocations = [part for part in (study.envelope and study.envelope.allocation,
                                     study.isoflop and study.isoflop.allocation, study.parametric) if part]
    for allocation in allocations:
        style = STYLES[allocation.method.split(" ")[0]]
        for ax, optima, fitted, exponent in (
            (left, allocation.n_opt, allocation.n_at, allocation.n_exponent),
            (right, allocation.d_opt, allocation.d_at, allocation.d_exponent),
        ):
            short = allocation.method.split(" (")[0]
            ax.plot(allocation.compute, optima, linestyle="none", **style)
            inside = np.geomspace(allocation.compute.min(), allocation.compute.max(), 50)
            beyond = np.geomspace(allocation.compute.max(), allocation.compute.max() * study.extrapolation, 20)
            bounds = f" {interval(exponent, missing='')}".rstrip()
            flag = " (degenerate)" if study.problems.get(allocation.method) else ""
            ax.plot(inside, fitted(inside), color=style["color"])
            ax.plot(beyond, fitted(beyond), color=style["color"], linestyle="--")
            ax.plot([], [], linestyle="-", label=f"{short}: {number(exponent.value)}{bounds}{flag}", **style)
    left.set_ylabel("Optimal parameters N_opt")
    right.set_ylabel("Optimal examples D_opt")
    left.set_title("Compute-optimal model size")
    right.set_title("Compute-optimal data size")
    flagged = [f"{part.method.split(' (')[0]}: {'; '.join(study.problems[part.method])}"
               for part in allocations if study.problems.get(part.method)]
    degenerate_box(left, "frontier", flagged)
    for ax in (left, right):
        ax.set_xlabel(label("compute"))
        ax.plot([], [], color="0.4", linestyle="--", label=f"extrapolation (x{study.extrapolation:g})")
        legend_below(ax, columns=1, title="optima, and the exponent of their power law [interval]",
                     title_fontsize=7.5)
    return figure


def has_allocations(study: Study) -> bool:
    """Whether any approach produced optima to draw."""
    return any(part is not None for part in (study.envelope, study.isoflop, study.parametric))

