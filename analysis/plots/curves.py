"""Figures of the runs' curves: error against compute (with the fitted frontier), data size and model size."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.data_axis import COLUMN
from analysis.errors import AnalysisError
from analysis.numbers import count
from analysis.plots.style import decimal_ticks, degenerate_box, label, legend_below, new_figure, power_of_ten, size_norm
from analysis.points import TIE, final_rows
from analysis.request import FittedLaw
from analysis.study import EXTRAPOLATION, Study

RUN_COLORS = "viridis"
DATA_COLORS = "plasma"
MAX_DATA_CURVES = 6  # error_vs_params draws the joint law at this many of the data sizes run, at most


def error_vs_compute(study: Study) -> Figure:
    """Each run's error against compute, coloured by model size, with the fitted frontier law, its confidence
    band and its extrapolation beyond the data."""
    frontier = study.frontier
    x = frontier.request.x[0] if frontier else "compute"
    figure, (ax,) = new_figure()
    _runs(figure, ax, study.results.frame, x, study.y)
    if frontier:
        draw_frontier(ax, frontier, study.extrapolation, float(study.results.frame[x].max()))
        _prediction(ax, study)
        degenerate_box(ax, f"{frontier.fit.law.name} fit", study.problems.get(frontier.fit.law.name, ()))
    ax.set_title(f"{label(study.y)} against {'compute' if x == 'compute' else x}")
    decimal_ticks(ax)
    legend_below(ax)
    return figure


def error_vs_data(study: Study) -> Figure:
    """Each run's error against examples seen, coloured by model size, with the joint law's curves."""
    figure, (ax,) = new_figure()
    frame = study.results.frame
    norm = _runs(figure, ax, frame, "examples_seen", study.y)
    joint = study.joint
    if joint and joint.request.x == ("params", "examples_seen"):
        for size, rows in frame.groupby("params"):
            seen = np.geomspace(rows["examples_seen"].min(), rows["examples_seen"].max(), 50)
            ax.plot(seen, joint.fit.predict(np.full_like(seen, size), seen), color=ScalarMappable(norm, RUN_COLORS)
                    .to_rgba(size), linestyle=":", linewidth=1.0)
        ax.plot([], [], color="0.3", linestyle=":", label=f"{joint.fit.law.name} fit, per model size")
        degenerate_box(ax, f"{joint.fit.law.name} fit", study.problems.get(joint.fit.law.name, ()))
    ax.set_title(f"{label(study.y)} against data seen")
    decimal_ticks(ax)
    legend_below(ax)
    return figure


def error_vs_params(study: Study) -> Figure:
    """Each run's final error against model size, coloured by examples seen, with the joint law at the data
    sizes the runs ended at (up to MAX_DATA_CURVES of them, same colours) and its limit of unlimited data."""
    figure, (ax,) = new_figure()
    final = final_rows(study.results.frame)
    norm = size_norm(final["examples_seen"])
    colors = ScalarMappable(norm, DATA_COLORS)
    ax.scatter(final["params"], final[study.y], c=colors.to_rgba(final["examples_seen"]), s=14, zorder=3,
               edgecolors="none", label="final error of a run")
    joint = study.joint
    if joint and joint.request.x == ("params", "examples_seen"):
        sizes = np.geomspace(final["params"].min(), final["params"].max(), 80)
        for seen in data_sizes(final["examples_seen"].to_numpy(dtype=np.float64)):
            ax.plot(sizes, joint.fit.predict(sizes, np.full_like(sizes, seen)), color=colors.to_rgba(seen),
                    linestyle="--", linewidth=1.0, label=f"{joint.fit.law.name} fit, D = {power_of_ten(seen)}")
        ax.plot(sizes, joint.fit.predict(sizes, np.full_like(sizes, 1e30)), color="black", linewidth=1.0,
                label=f"{joint.fit.law.name} fit, unlimited data")
        degenerate_box(ax, f"{joint.fit.law.name} fit", study.problems.get(joint.fit.law.name, ()))
    figure.colorbar(colors, ax=ax, label=label("examples_seen"))
    ax.set_xlabel(label("params"))
    ax.set_ylabel(label(study.y))
    ax.set_title(f"Final {label(study.y).lower()} against model size")
    decimal_ticks(ax)
    legend_below(ax)
    return figure


def error_vs_train_examples(study: Study) -> Figure:
    """The data axis: each run's final error against its training-set size, a line per model size, with the data
    axis's law per model size (dotted) and a red box where that fit is degenerate."""
    axis = study.data_axis
    if axis is None:
        raise AnalysisError("the runs all trained on one training-set size: there is no data axis")
    drawn = axis.rows[_positive(axis.rows, "params") & _positive(axis.rows, study.y)]
    if drawn.empty:
        raise AnalysisError(f"no run of the data axis has a positive params and {study.y}")
    figure, (ax,) = new_figure()
    colors = ScalarMappable(size_norm(drawn["params"]), RUN_COLORS)
    for size, rows in drawn.groupby("params"):
        rows = rows.sort_values(COLUMN)
        ax.plot(rows[COLUMN], rows[study.y], color=colors.to_rgba(size), marker="o", markersize=3, linewidth=0.9)
        if axis.law is not None:
            examples = np.geomspace(drawn[COLUMN].min(), drawn[COLUMN].max(), 60)
            ax.plot(examples, axis.law.fit.predict(np.full_like(examples, size), examples),
                    color=colors.to_rgba(size), linestyle=":", linewidth=1.0)
    ax.plot([], [], color="0.5", marker="o", markersize=3, linewidth=0.9, label="final error (colour: model size)")
    if axis.law is not None:
        ax.plot([], [], color="0.3", linestyle=":", label=f"{axis.law.fit.law.name} fit, per model size")
        if axis.problems:  # room above the runs for the box
            low, high = ax.get_ylim()
            ax.set_ylim(low, high * (high / low) ** 0.6)
        degenerate_box(ax, f"{axis.law.fit.law.name} fit", axis.problems)
    figure.colorbar(colors, ax=ax, label=label("params"))
    sizes = sorted(drawn[COLUMN].unique())
    ax.set_xticks(sizes, [count(size) for size in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label(COLUMN))
    ax.set_ylabel(label(study.y))
    ax.set_title(f"Final {label(study.y).lower()} against training-set size")
    decimal_ticks(ax)
    legend_below(ax)
    return figure


def _positive(frame: pd.DataFrame, column: str) -> pd.Series:
    """Which rows hold a finite positive number in `column`."""
    values = pd.to_numeric(frame[column], errors="coerce")
    return np.isfinite(values) & (values > 0)


def _prediction(ax: Axes, study: Study) -> None:
    """The headline's prediction at `extrapolation` times the largest compute, with its interval."""
    headline = study.headline
    if headline.predicted is None:
        return
    value, low, high = headline.predicted.value, headline.predicted.low, headline.predicted.high
    errors = [[value - low], [high - value]] if np.isfinite(low) else None
    ax.errorbar([headline.at], [value], yerr=errors, marker="D", markersize=4, color="tab:red", capsize=2,
                linestyle="none", zorder=6, label=f"prediction at x{headline.extrapolation:g} the largest compute")


def data_sizes(seen: np.ndarray, most: int = MAX_DATA_CURVES) -> np.ndarray:
    """Data sizes the runs ended at (values within 1% count as one, the smallest kept): all of them, or `most`
    spread evenly over them in order."""
    ordered = np.sort(seen)
    distinct = ordered[np.concatenate([[True], np.diff(np.log(ordered)) > np.log1p(TIE)])]
    if distinct.size <= most:
        return distinct
    return distinct[np.unique(np.round(np.linspace(0, distinct.size - 1, most)).astype(int))]


def _runs(figure: Figure, ax: Axes, frame: pd.DataFrame, x: str, y: str) -> LogNorm | None:
    """Draw every run as a line, coloured by its model size (one colour if the table has no params)."""
    has_sizes = "params" in frame.columns and frame["params"].notna().all()
    norm = size_norm(frame["params"]) if has_sizes else None
    colors = ScalarMappable(norm, RUN_COLORS) if has_sizes else None
    groups = frame.groupby("run_id", sort=False) if "run_id" in frame.columns else [("all", frame)]
    for _, run in groups:
        run = run.sort_values(x)
        color = colors.to_rgba(run["params"].iloc[0]) if colors else "tab:blue"
        ax.plot(run[x], run[y], color=color, marker="o", markersize=2.2, linewidth=0.9, alpha=0.85)
    ax.plot([], [], color="0.5", marker="o", markersize=2.2, linewidth=0.9, label="runs (colour: model size)")
    if colors:
        figure.colorbar(colors, ax=ax, label=label("params"))
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    return norm


def draw_frontier(ax: Axes, fitted: FittedLaw, extrapolation: float = EXTRAPOLATION,
                  largest: float | None = None) -> None:
    """The fitted law over its points (solid) and on to `extrapolation` times the `largest` x (default: of its
    points; dashed), its band, and the points it was fitted to."""
    x, y = fitted.request.x[0], fitted.request.y
    low, high = fitted.rows[x].min(), fitted.rows[x].max()
    end = (high if largest is None else max(high, largest)) * extrapolation
    inside, beyond = np.geomspace(low, high, 120), np.geomspace(high, end, 40)
    ax.scatter(fitted.rows[x], fitted.rows[y], s=22, facecolors="none", edgecolors="black", linewidths=0.8,
               zorder=4, label=f"{fitted.request.points} points (fitted)")
    ax.plot(inside, fitted.fit.predict(inside), color="black", zorder=5,
            label=f"{fitted.fit.law.name}: {fitted.fit.law.formula}")
    ax.plot(beyond, fitted.fit.predict(beyond), color="black", linestyle="--", zorder=5,
            label=f"extrapolation (x{extrapolation:g})")
    if fitted.boot and len(next(iter(fitted.boot.samples.values()))) >= 2:
        both = np.concatenate([inside, beyond[1:]])
        band_low, band_high = fitted.boot.band(both)
        ax.fill_between(both, band_low, band_high, color="black", alpha=0.15, linewidth=0, zorder=2,
                        label=f"{fitted.boot.confidence:.0%} bootstrap band")
