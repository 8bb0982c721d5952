"""Training FLOPs per example as a power law of model size, to turn a compute budget into a data size."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.frontier.allocation import log_slopes
from analysis.table.contract import require_columns
from analysis.validate import positive_column


@dataclasses.dataclass(frozen=True)
class FlopsModel:
    """FLOPs per example = coefficient·N^exponent (exponent 1 for C = 6ND; other for conv nets)."""

    coefficient: float
    exponent: float

    def per_example(self, params: np.ndarray) -> np.ndarray:
        """Training FLOPs per example of a model with `params` parameters."""
        return self.coefficient * np.asarray(params, dtype=np.float64) ** self.exponent

    def examples(self, compute: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Examples a model of size `params` sees for training `compute` FLOPs."""
        return np.asarray(compute, dtype=np.float64) / self.per_example(params)


def flops_model(frame: pd.DataFrame) -> FlopsModel:
    """Fit log(compute / examples_seen) on log params over the table's runs."""
    require_columns(frame, ["params", "compute", "examples_seen"], "turning compute into data size")
    params = positive_column(frame, "params")
    per_example = positive_column(frame, "compute") / positive_column(frame, "examples_seen")
    if np.unique(params).size < 2:
        raise AnalysisError("FLOPs per example cannot be related to model size with a single model size; "
                            "add runs of other sizes")
    slope, intercept = log_slopes(np.log(params), np.log(per_example))
    return FlopsModel(coefficient=float(np.exp(intercept)), exponent=float(slope))
