"""Predict-then-verify figure: each held-out point's predicted y against its observed y, with the prediction
interval of one run as a bar, the line predicted = observed, and the intervals' coverage against their level."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis.plots.style import decimal_ticks, degenerate_box, label, legend_below, new_figure, power_of_ten
from analysis.study import Study

PADDING = 1.15  # the axes reach this factor beyond the points and bars
STYLES = {True: {"color": "tab:blue", "marker": "o"}, False: {"color": "#b00020", "marker": "X"}}  # by `inside`


def predicted_vs_observed(study: Study) -> Figure:
    """Held-out points of the study's predict-then-verify check, inside their interval in blue, outside in red,
    with vertical bars for the intervals; the title gives the cut-off (as analysis.numbers rounds it), the coverage
    and the nominal level; a degenerate law is marked in a red box."""
    checked = study.verification
    figure, (ax,) = new_figure()
    rows = checked.rows
    observed = np.array([row.observed for row in rows])
    predicted = np.array([row.predicted for row in rows])
    bounds = np.array([[row.low, row.high] for row in rows])
    level = f"{checked.confidence:.0%}"
    inside = np.array([row.inside for row in rows])
    for flag in (True, False):
        chosen = inside == flag
        if chosen.any():
            ax.vlines(observed[chosen], bounds[chosen, 0], bounds[chosen, 1], color=STYLES[flag]["color"],
                      linewidth=0.9, alpha=0.7, zorder=3)
            ax.scatter(observed[chosen], predicted[chosen], s=22, zorder=4, **STYLES[flag],
                       label=f"{'inside' if flag else 'outside'} its {level} prediction interval ({chosen.sum()})")
    values = np.concatenate([observed, predicted, bounds[np.isfinite(bounds)]])
    limits = (values.min() / PADDING, values.max() * PADDING)
    ax.plot(limits, limits, color="0.4", linestyle="--", linewidth=1.0, label="predicted = observed", zorder=2)
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    decimal_ticks(ax)
    for formatter, set_format in ((ax.yaxis.get_major_formatter(), ax.xaxis.set_major_formatter),
                                  (ax.yaxis.get_minor_formatter(), ax.xaxis.set_minor_formatter)):
        if isinstance(formatter, FuncFormatter):  # decimals on y: the same on x
            set_format(FuncFormatter(formatter.func))
    ax.set_xlabel(f"Observed {label(study.y).lower()}")
    ax.set_ylabel(f"Predicted {label(study.y).lower()}")
    coverage = f"{checked.coverage:.0%}" if np.isfinite(checked.coverage) else "—"
    ax.set_title(f"{checked.law} fitted where {checked.column} < {power_of_ten(checked.cutoff)} "
                 f"({checked.train_points} points)\ncoverage {coverage}: {inside.sum()} of {len(rows)} held-out "
                 f"points inside (nominal {level})")
    degenerate_box(ax, f"{checked.law} fit", study.problems.get(checked.law, ()))
    legend_below(ax, columns=1)
    return figure
