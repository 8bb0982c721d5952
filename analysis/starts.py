"""Grids of starting points for the multi-start fit (Hoffmann et al. 2022, App. D: every combination)."""

from __future__ import annotations

import itertools

import numpy as np

from analysis.laws import Law


def start_grid(law: Law, per_parameter: int | None = None) -> np.ndarray:
    """Every combination of the parameters' starting values (raw, unconstrained), one start per row.

    With `per_parameter`, each parameter contributes that many of its values, evenly picked (a coarser grid).
    """
    columns = []
    for param in law.params:
        values = np.asarray(param.starts, dtype=np.float64)
        if per_parameter is not None:
            values = values[np.unique(np.round(np.linspace(0, len(values) - 1, per_parameter)).astype(int))]
        columns.append(param.raw(param.inside(values)))
    return np.array(list(itertools.product(*columns)), dtype=np.float64)
