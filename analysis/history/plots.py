"""The figures of the history of ImageNet accuracy: the ILSVRC winners' top-5 error by year, the landmark
models' top-1 error by date, and top-1 error against training compute, on which a sweep's own runs (with
their fitted frontier) and reproductions of historic models can be overlaid."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis.history.fit import Trend
from analysis.history.table import EXTRA_DATA, GROUP_LABELS, GROUPS, NOT_FITTED
from analysis.plots.curves import draw_frontier
from analysis.plots.labels import place_labels
from analysis.plots.style import legend_below, power_of_ten
from analysis.request import FittedLaw

CATEGORY_STYLE = {  # extra training data -> marker and colour
    "none": {"marker": "o", "color": "tab:blue"},
    "imagenet-21k": {"marker": "s", "color": "tab:orange"},
    "private-or-web": {"marker": "^", "color": "tab:red"},
}
GROUP_COLORS = {"imagenet-1k": "tab:blue", "extra-data": "tab:red"}
HUMAN_COLOR = "tab:green"
ERROR_TICKS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)
WIDE = (7.6, 5.4)  # inches: room for the labels of ~40 points
DECADES_WIDE = 7.0  # decades of compute that fit WIDE; the figure widens (up to 1.6x) for more


@dataclasses.dataclass(frozen=True)
class Overlay:
    """A sweep's own runs drawn on the history's error-vs-compute axes, with their fitted frontier."""

    frame: pd.DataFrame
    y: str
    source: str
    frontier: FittedLaw | None


def ilsvrc_figure(history: pd.DataFrame) -> Figure:
    """Top-5 test error of the ILSVRC classification winners by year, other notable entries, the
    post-competition ensembles that passed the human estimate, and the human estimate itself."""
    figure, ax = _figure((6.4, 4.4))
    winners = history[history["kind"] == "ilsvrc-winner"].sort_values("year")
    ax.plot(winners["year"], 100 * winners["top5_error"], color="0.55", linewidth=1.0, zorder=2)
    points = []
    for _, row in history[history["kind"].isin(("ilsvrc-winner", "ilsvrc-entry"))].iterrows():
        won = row["kind"] == "ilsvrc-winner"
        style = CATEGORY_STYLE[row["extra_data"]]
        ax.scatter(row["year"], 100 * row["top5_error"], marker=style["marker"], s=30, zorder=4, linewidths=1.1,
                   facecolors=style["color"] if won else "white", edgecolors=style["color"])
        points.append((row["year"], 100 * row["top5_error"], f"{row['model']} {100 * row['top5_error']:.1f}%"))
    after = history[(history["kind"] == "model") & history["top5_error"].notna() & (history["eval_split"] == "test")]
    ax.scatter(after["decimal_year"], 100 * after["top5_error"], marker="D", s=18, color="0.35", zorder=4)
    if not after.empty:  # a few weeks apart: one label for all, placed first (it has the least room)
        points.insert(0, (after["decimal_year"].iloc[0], 100 * after["top5_error"].iloc[0], "\n".join(
            f"{row['model']} {100 * row['top5_error']:.2f}%" for _, row in after.iterrows())))
    human = history[history["kind"] == "human"]
    if not human.empty:
        level = 100 * float(human["top5_error"].iloc[0])
        ax.axhline(level, color=HUMAN_COLOR, linestyle="--", linewidth=1.0, zorder=1)
        ax.annotate(f"human estimate {level:g}% (Russakovsky et al. 2015)", (0.01, level), xytext=(0, 3),
                    xycoords=("axes fraction", "data"), textcoords="offset points", ha="left", va="bottom",
                    fontsize=7, color=HUMAN_COLOR)
    first, last = int(winners["year"].min()), int(winners["year"].max())
    ax.set_xlim(first - 0.5, last + 0.7)
    ax.set_ylim(0, 100 * winners["top5_error"].max() * 1.17)
    ax.set_xticks(range(first, last + 1))
    ax.set_xlabel("Year of the challenge")
    ax.set_ylabel("Top-5 error on the ILSVRC test set (%)")
    ax.set_title("ILSVRC image classification: the winners' top-5 error")
    handles = [
        Line2D([], [], color="0.55", marker="o", markerfacecolor="tab:blue", markeredgecolor="tab:blue",
               label="winner, ImageNet-1k data only"),
        Line2D([], [], color="0.55", marker="s", markerfacecolor="tab:orange", markeredgecolor="tab:orange",
               label="winner with extra data (ImageNet fall 2011)"),
        Line2D([], [], linestyle="", marker="o", markerfacecolor="white", markeredgecolor="0.3",
               label="other entry of the same team (hollow)"),
        Line2D([], [], linestyle="", marker="D", color="0.35", label="post-competition ensemble (2012 test set)"),
    ]
    legend_below(ax, handles=handles)
    _place(figure, ax, points)
    return figure


def date_figure(history: pd.DataFrame, trends: Sequence[Trend] = ()) -> Figure:
    """Top-1 validation error of the landmark models by date, marked by extra training data, with each
    group's fitted trend over its record-setting models."""
    figure, ax = _figure(WIDE)
    models = history[(history["kind"] == "model") & history["top1_error"].notna()]
    _models(ax, models, "decimal_year")
    for trend in trends:
        if trend.name == "time" and trend.group in GROUP_COLORS:
            years = np.linspace(trend.rows["decimal_year"].min(), trend.rows["decimal_year"].max(), 50)
            halving = trend.headline["error_halving_years"].value
            ax.plot(years, trend.predict(years), color=GROUP_COLORS[trend.group], linestyle="--", linewidth=1.0,
                    zorder=2, label=f"{GROUP_LABELS[trend.group]}, trend of {trend.points}: error halves every "
                    f"{halving:.1f} years")
    _error_axis(ax, models["top1_error"])
    ax.set_xlabel("Date of first publication")
    ax.set_title("ImageNet-1k top-1 validation error of landmark models")
    _legend(ax)
    records = _records(models, "decimal_year")
    order = pd.concat([records, models.drop(records.index)])
    _place(figure, ax, list(zip(order["decimal_year"], order["top1_error"], order["model"])))
    return figure


def compute_figure(history: pd.DataFrame, trends: Sequence[Trend] = (), overlay: Overlay | None = None,
                   reproduced: pd.DataFrame | None = None) -> Figure:
    """Top-1 validation error against training compute (log-log), marked by extra training data, with each
    group's fitted power law; optionally a sweep's runs and frontier, and reproductions of historic models."""
    models = history[(history["kind"] == "model") & history["top1_error"].notna() & history["compute"].notna()]
    compute = [models["compute"], *([overlay.frame["compute"]] if overlay is not None else []),
               *([reproduced["compute"]] if reproduced is not None else [])]
    spread = pd.concat(compute).astype(float).dropna()
    decades = np.log10(spread.max() / spread.min()) + 1
    figure, ax = _figure((WIDE[0] * min(max(1.0, decades / DECADES_WIDE), 1.6), WIDE[1]))  # wider, not denser
    ax.set_xscale("log")
    _models(ax, models, "compute")
    errors = [models["top1_error"]]
    for trend in trends:
        if trend.name == "compute":
            low, high = trend.rows["compute"].min(), trend.rows["compute"].max()
            x = np.geomspace(low, high, 50)
            cost = trend.headline["compute_per_error_halving"].value
            ax.plot(x, trend.predict(x), color=GROUP_COLORS[trend.group], linestyle="--", linewidth=1.0, zorder=2,
                    label=f"{GROUP_LABELS[trend.group]} fit: {_times(cost)} compute per halving of error")
    if overlay is not None:
        _overlay(ax, overlay)
        errors.append(overlay.frame[overlay.y])
    labels = []
    if reproduced is not None:
        shown = _reproduced(ax, reproduced)
        errors += [shown["top1_error"], shown["published_top1_error"]]
        labels += [(row["compute"], row["top1_error"], f"{row['name']} (ours)") for _, row in shown.iterrows()]
    _error_axis(ax, pd.concat(errors))
    ax.set_xlim(spread.min() / 3, spread.max() * 3)
    ax.set_xlabel("Training compute (FLOPs, pre-training included)")
    ax.set_title("ImageNet-1k top-1 validation error against training compute")
    _legend(ax)
    front = _records(models, "compute")
    order = pd.concat([front, models.drop(front.index)])
    labels += list(zip(order["compute"], order["top1_error"], order["model"]))
    _place(figure, ax, labels, _markers(ax))
    return figure


def _times(factor: float) -> str:
    """A factor as ×105 or ×6.4×10^5."""
    return f"×{factor:.3g}" if factor < 1e4 else f"×{power_of_ten(factor)}"


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)  # labels are placed by measuring text, which needs a renderer
    return figure, figure.add_subplot()


def _models(ax: Axes, models: pd.DataFrame, x: str) -> None:
    """Every model as a marker: shape and colour by extra data, hollow if not fitted (zero-shot, probes)."""
    for category, style in CATEGORY_STYLE.items():
        rows = models[models["extra_data"] == category]
        for hollow, part in rows.groupby(rows["protocol"].isin(NOT_FITTED)):
            ax.scatter(part[x], part["top1_error"], marker=style["marker"], s=26, zorder=4, linewidths=1.1,
                       facecolors="white" if hollow else style["color"], edgecolors=style["color"])


def _legend(ax: Axes) -> None:
    handles = [Line2D([], [], linestyle="", marker=style["marker"], color=style["color"], label=EXTRA_DATA[category])
               for category, style in CATEGORY_STYLE.items()]
    handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor="white", markeredgecolor="0.3",
                          label="zero-shot or frozen-feature probe (not fitted)"))
    handles += ax.get_legend_handles_labels()[0]
    legend_below(ax, handles=handles)


def _error_axis(ax: Axes, errors: pd.Series) -> None:
    """A log error axis labelled in percent, with ticks at round values inside the data's range."""
    errors = errors.astype(float).dropna()
    low, high = errors.min() / 1.15, min(errors.max() * 1.15, 1.0)
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ax.yaxis.set_major_locator(FixedLocator([tick for tick in ERROR_TICKS if low <= tick <= high]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{100 * value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("Top-1 error (%, log scale)")


def _records(models: pd.DataFrame, x: str) -> pd.DataFrame:
    """The models that beat every model of their group with a smaller x (earlier, or cheaper): labelled first."""
    parts = []
    for categories in GROUPS.values():
        rows = models[models["extra_data"].isin(categories) & ~models["protocol"].isin(NOT_FITTED)]
        rows = rows.sort_values(x)
        parts.append(rows[rows["top1_error"] < rows["top1_error"].cummin().shift(1, fill_value=np.inf)])
    return pd.concat(parts)


def _overlay(ax: Axes, overlay: Overlay) -> None:
    """A sweep's runs (grey curves) and its fitted frontier (black, with extrapolation and band)."""
    frame = overlay.frame
    groups = frame.groupby("run_id", sort=False) if "run_id" in frame.columns else [("all", frame)]
    for _, run in groups:
        run = run.sort_values("compute")
        ax.plot(run["compute"], run[overlay.y], color="0.45", marker="o", markersize=1.8, linewidth=0.7,
                alpha=0.8, zorder=3)
    ax.plot([], [], color="0.45", marker="o", markersize=1.8, linewidth=0.7, label=f"your runs ({overlay.source})")
    if overlay.frontier is not None:
        draw_frontier(ax, overlay.frontier)


def _reproduced(ax: Axes, reproduced: pd.DataFrame) -> pd.DataFrame:
    """Each reproduction (star) joined to its published error (hollow star, at the published compute if the
    reference gives one, else at the reproduction's). Returns the rows drawn (labelled by the caller)."""
    shown = reproduced[reproduced["compute"].notna() & reproduced["top1_error"].notna()].copy()
    shown["published_at"] = shown["published_compute"].fillna(shown["compute"])
    for _, row in shown.iterrows():
        ax.scatter(row["compute"], row["top1_error"], marker="*", s=90, color="black", zorder=7)
        if pd.notna(row["published_top1_error"]):
            ax.scatter(row["published_at"], row["published_top1_error"], marker="*", s=90, facecolors="white",
                       edgecolors="black", zorder=7)
            ax.plot([row["published_at"], row["compute"]], [row["published_top1_error"], row["top1_error"]],
                    color="black", linestyle=":", linewidth=0.9, zorder=6)
    ax.scatter([], [], marker="*", s=60, color="black", label="reproduced (ours)")
    ax.scatter([], [], marker="*", s=60, facecolors="white", edgecolors="black", label="published (reference)")
    return shown.assign(published_top1_error=shown["published_top1_error"].fillna(shown["top1_error"]))


def _markers(ax: Axes) -> tuple[np.ndarray, np.ndarray]:
    """Every marker drawn on the axes (scatter points and line vertices), for labels to keep clear of."""
    offsets = [np.ma.filled(collection.get_offsets(), np.nan) for collection in ax.collections]
    offsets += [np.asarray(line.get_xydata()) for line in ax.lines if line.get_marker() not in ("None", "", None)]
    points = np.concatenate(offsets) if offsets else np.empty((0, 2))
    return points[:, 0], points[:, 1]


def _place(figure: Figure, ax: Axes, points: Sequence[tuple[float, float, str]],
           obstacles: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Fix the layout, then label the points where there is room."""
    figure.canvas.draw()  # lay out the axes for good before measuring where labels go
    figure.set_layout_engine("none")
    if points:
        x, y, texts = zip(*points)
        place_labels(ax, x, y, texts, obstacles=obstacles)
