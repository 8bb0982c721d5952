"""A point estimate with a percentile confidence interval from resampled values."""

from __future__ import annotations

import dataclasses

import numpy as np

DEFAULT_CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (NaN bounds when there is no interval)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """value, low, high as a dict (for JSON)."""
        return dataclasses.asdict(self)


def percentile_interval(values: np.ndarray, estimate: float, confidence: float) -> Estimate:
    """`estimate` with the central `confidence` interval of the finite resampled `values`."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return Estimate(float(estimate), float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Estimate(float(estimate), float(low), float(high))
