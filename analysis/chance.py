"""The error of random guessing, which the Rosenfeld and M4 laws hold fixed, read off the results table."""

from __future__ import annotations

import math

import pandas as pd

from analysis.errors import AnalysisError


def chance_level(frame: pd.DataFrame, y: str) -> float | None:
    """y of a uniform random guess over the table's K classes: 1 - k/K for top-k error (k = 5 for columns
    named top5*, else 1), ln K for *loss columns; None if the table or the column's name does not say."""
    if "num_classes" not in frame.columns or not ("error" in y or "loss" in y):
        return None
    classes = pd.to_numeric(frame["num_classes"], errors="coerce").dropna().unique()
    if classes.size > 1:
        raise AnalysisError(f"the table mixes datasets with {sorted(classes.tolist())} classes; fit one dataset "
                            "at a time or pass --random-guess")
    top = 5.0 if "top5" in y else 1.0
    if classes.size == 0 or classes[0] <= top:
        return None
    return math.log(classes[0]) if "loss" in y else 1.0 - top / float(classes[0])
