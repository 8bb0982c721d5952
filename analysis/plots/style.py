"""Shared look of the figures: paper-sized, labelled with units, saved as PNG, SVG and PDF.

Figures are built on matplotlib.figure.Figure directly: no pyplot, no global backend (PNG is drawn by Agg).
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis.numbers import DIGITS

FORMATS = ("png", "svg", "pdf")
SINGLE = (5.0, 4.2)  # inches, legend below included: readable at the width of a paper column pair
DOUBLE = (8.0, 4.0)
STYLE = {
    "font.size": 9, "axes.labelsize": 9, "axes.titlesize": 9.5, "legend.fontsize": 7.5, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "lines.linewidth": 1.3, "lines.markersize": 3.5, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.5, "legend.frameon": False, "savefig.bbox": "tight", "savefig.dpi": 200,
    "svg.fonttype": "none", "pdf.fonttype": 42,
}
LABELS = {
    "compute": "Training compute C (FLOPs)", "params": "Parameters N", "examples_seen": "Examples seen D",
    "train_examples": "Training set size (examples)", "flops_per_example": "FLOPs per example",
    "top1_error": "Top-1 error", "top5_error": "Top-5 error", "minival_error": "Minival top-1 error",
    "eval_loss": "Eval loss (nats)", "train_loss": "Train loss (nats)", "step": "Step",
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Use the figures' rc settings inside the block."""
    with mpl.rc_context(STYLE):
        yield


def new_figure(size: tuple[float, float] = SINGLE, columns: int = 1) -> tuple[Figure, list]:
    """A figure with `columns` log-log axes side by side."""
    figure = Figure(figsize=size, layout="constrained")
    axes = [figure.add_subplot(1, columns, index + 1) for index in range(columns)]
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
    return figure, axes


def decimal_ticks(ax: Axes) -> None:
    """Label the y axis with plain decimals (0.2, 0.3, ...) instead of powers of ten when it spans little."""
    low, high = ax.get_ylim()
    decades = np.log10(high / low)
    if decades >= 1.5:
        return
    shown = range(1, 10) if decades < 0.6 else (2, 3, 5)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda value, _: f"{value:g}" if int(f"{value:.0e}"[0]) in shown else ""))


def power_of_ten(value: float) -> str:
    """`value` as mathtext with analysis.numbers' significant digits, e.g. 3.21×10^15 or 10^16."""
    mantissa, exponent = f"{value:.{DIGITS - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    power = f"10^{{{int(exponent)}}}"
    return f"${power}$" if mantissa == "1" else f"${mantissa}\\times{power}$"


def legend_below(ax: Axes, columns: int = 2, **options: object) -> None:
    """A legend under the axes, where it cannot hide data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=columns, **options)


def degenerate_box(ax: Axes, what: str, problems: Sequence[str]) -> None:
    """A red box in the axes' upper right saying that `what` (e.g. 'saturating fit') is degenerate and why;
    nothing when `problems` is empty."""
    if not problems:
        return
    text = "\n".join(textwrap.wrap(f"degenerate {what}: {'; '.join(problems)}", 48))
    ax.text(0.98, 0.98, text, transform=ax.transAxes, ha="right", va="top", fontsize=7, color="#b00020",
            zorder=10, bbox={"boxstyle": "round,pad=0.3", "facecolor": "#fdecec", "edgecolor": "#b00020",
                             "linewidth": 0.8})


def label(column: str) -> str:
    """Axis label of a column, with its unit."""
    return LABELS.get(column, column)


def size_norm(sizes: np.ndarray) -> LogNorm:
    """Colour scale over model sizes (log)."""
    return LogNorm(vmin=float(np.min(sizes)), vmax=float(np.max(sizes)) * (1.0 + 1e-9))


def save(figure: Figure, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the figure as out_dir/name.<format> for each format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in formats:
        path = out_dir / f"{name}.{extension}"
        figure.savefig(path, format=extension, metadata=_metadata(extension))
        paths.append(path)
    return paths


def _metadata(extension: str) -> dict[str, str | None]:
    """Metadata that keeps files identical from run to run (no creation dates)."""
    return {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[extension]
