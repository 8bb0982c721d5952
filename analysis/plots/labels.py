"""Point labels that do not overlap: each label takes the first of a few positions around its point where
it hits no other label or marker, stays inside the axes and lies nearer its own marker than any other; a
label with no such position is left out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.transforms import Bbox

# (dx, dy) in points from the marker, with the text's alignment there: close positions first, then farther
POSITIONS = tuple(
    ((sign_x * dx, sign_y * dy), {1: "left", -1: "right", 0: "center"}[sign_x], "bottom" if sign_y > 0 else "top")
    for dx, dy in ((5, 2), (0, 6), (9, 9), (0, 14), (14, 14))
    for sign_x in ((1, -1) if dx else (0,)) for sign_y in (1, -1)
)
MARKER_RADIUS = 3.5  # points: the area around every marker that labels keep clear of
LEADER_FROM = 9  # points: labels this far from their marker get a thin line to it


def place_labels(ax: Axes, x: Sequence[float], y: Sequence[float], texts: Sequence[str], *,
                 obstacles: tuple[Sequence[float], Sequence[float]] | None = None, fontsize: float = 6.5,
                 color: str = "0.15") -> list[str]:
    """Label the points (x, y) with `texts`, in order (put the most important first). `obstacles` are more
    markers to keep clear of (default: the labelled points); texts already on the axes are kept clear of too.
    Returns the texts left out for lack of room."""
    figure = ax.figure
    renderer = figure.canvas.get_renderer()
    scale = figure.dpi / 72.0
    clear_x, clear_y = obstacles if obstacles is not None else (x, y)
    markers = ax.transData.transform(np.column_stack([np.ma.filled(clear_x, np.nan), np.ma.filled(clear_y, np.nan)])
                                     .astype(float))
    markers = markers[np.all(np.isfinite(markers), axis=1)]
    radius = MARKER_RADIUS * scale
    taken = [Bbox.from_extents(px - radius, py - radius, px + radius, py + radius) for px, py in markers]
    taken += [text.get_window_extent(renderer) for text in ax.texts if text.get_text()]
    frame = ax.get_window_extent(renderer)
    left_out = []
    for px, py, text in zip(x, y, texts):
        own = ax.transData.transform((px, py))
        others = markers[np.hypot(*(markers - own).T) > radius]  # markers on top of its own count as its own
        for (dx, dy), horizontal, vertical in POSITIONS:
            leader = {"arrowstyle": "-", "linewidth": 0.5, "color": "0.4", "shrinkA": 1, "shrinkB": 3} \
                if max(abs(dx), abs(dy)) >= LEADER_FROM else None
            label = ax.annotate(text, (px, py), xytext=(dx, dy), textcoords="offset points", ha=horizontal,
                                va=vertical, fontsize=fontsize, color=color, zorder=6, arrowprops=leader)
            box = label.get_window_extent(renderer).expanded(1.04, 1.1)  # the text (not the leader line)
            inside = frame.containsx(box.x0) and frame.containsx(box.x1) and frame.containsy(box.y0) \
                and frame.containsy(box.y1)
            clash = any(box.overlaps(other) for other in taken
                        if np.hypot(*(other.get_points().mean(axis=0) - own)) > radius)
            nearer = others.size and _distance(box, others).min() < _distance(box, own[None, :])[0]
            if inside and not clash and not nearer:
                taken.append(box)
                break
            label.remove()
        else:
            left_out.append(text)
    return left_out


def _distance(box: Bbox, points: np.ndarray) -> np.ndarray:
    """Distance (display units) from each point to the box; 0 inside it."""
    dx = np.maximum(np.maximum(box.x0 - points[:, 0], points[:, 0] - box.x1), 0.0)
    dy = np.maximum(np.maximum(box.y0 - points[:, 1], points[:, 1] - box.y1), 0.0)
    return np.hypot(dx, dy)
