"""IsoFLOP figure: final error against model size at each compute budget, the parabolas and their minima."""

from __future__ import annotations

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from analysis.plots.style import decimal_ticks, degenerate_box, label, legend_below, new_figure, power_of_ten, size_norm
from analysis.study import Study

BUDGET_COLORS = "cividis"


def isoflop_curves(study: Study) -> Figure:
    """One colour per compute budget: runs, fitted parabola, and the minimum (star) where it is bracketed."""
    figure, (ax,) = new_figure()
    parabolas = study.isoflop.parabolas
    colors = ScalarMappable(size_norm(np.array([p.budget for p in parabolas])), BUDGET_COLORS)
    for parabola in parabolas:
        color = colors.to_rgba(parabola.budget)
        faded = parabola.problem is not None
        ax.scatter(parabola.params, parabola.values, color=color, s=14, alpha=0.4 if faded else 1.0, zorder=3)
        if np.all(np.isfinite(parabola.coefficients)):
            sizes = np.geomspace(parabola.params.min() / 1.3, parabola.params.max() * 1.3, 80)
            ax.plot(sizes, parabola.curve(sizes), color=color, alpha=0.4 if faded else 1.0,
                    linestyle=":" if faded else "-", label=f"C = {power_of_ten(parabola.budget)} FLOPs")
        if not faded:
            ax.plot(parabola.n_opt, parabola.y_opt, marker="*", markersize=11, color=color,
                    markeredgecolor="black", markeredgewidth=0.6, zorder=5)
    ax.plot([], [], marker="*", markersize=9, color="white", markeredgecolor="black", linestyle="none",
            label="minimum (N_opt)")
    ax.set_xlabel(label("params"))
    ax.set_ylabel(f"Final {label(study.y).lower()}")
    ax.set_title("IsoFLOP curves (parabolas in log N)")
    degenerate_box(ax, "IsoFLOP frontier", study.problems.get(study.isoflop.allocation.method, ()))
    decimal_ticks(ax)
    legend_below(ax)
    return figure
