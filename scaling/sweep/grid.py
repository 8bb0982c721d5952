"""Sweep notation: grids of config overrides built from `sweep`, `product`, `zipped` and `chain`.

A grid is a list of override dicts `{"model.width": 16, "data.train_examples": 400}`:
    product(sweep("model.width", [8, 16]), sweep("optim.lr", [1e-3, 3e-3]))   # 4 points
    zipped(sweep("model.width", [8, 16]), sweep("model.depth", [10, 18]))     # 2 points, paired
    chain(grid_a, grid_b)                                                        # a's points, then b's
"""

from __future__ import annotations

import itertools
from typing import Any

from scaling.errors import ConfigError

Grid = list[dict[str, Any]]


def sweep(key: str, values: list[Any]) -> Grid:
    """One config key over several values."""
    return [{key: value} for value in values]


def fixed(**overrides: Any) -> Grid:
    """A single point; keys use `__` for dots (`train__steps=100` is `train.steps=100`)."""
    return [{key.replace("__", "."): value for key, value in overrides.items()}]


def product(*grids: Grid) -> Grid:
    """Every combination of one point from each grid (later grids vary fastest)."""
    return [_merge(points) for points in itertools.product(*grids)]


def zipped(*grids: Grid) -> Grid:
    """The i-th points of all grids together; the grids must be equally long."""
    lengths = {len(grid) for grid in grids}
    if len(lengths) > 1:
        raise ConfigError(f"zipped grids must have equal lengths, got {sorted(lengths)}")
    return [_merge(points) for points in zip(*grids)]


def chain(*grids: Grid) -> Grid:
    """All points of the first grid, then all of the second, and so on."""
    return [point for grid in grids for point in grid]


def _merge(points: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for point in points:
        clash = set(merged) & set(point)
        if clash:
            raise ConfigError(f"the same key is swept twice in one point: {', '.join(sorted(clash))}")
        merged.update(point)
    return merged
