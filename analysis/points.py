"""Which rows of a results table a law is fitted to: all of them, each run's final row, or the envelope."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import require_columns

POINT_SETS = ("all", "final", "envelope")
TIE = 0.01  # x values within 1% count as equal when building the envelope


def select_points(frame: pd.DataFrame, how: str, x: str, y: str) -> pd.DataFrame:
    """`all` rows; each run's `final` row; or the `envelope`: rows whose y beats every row of smaller x
    (the best error reached at each compute, over all runs; x within 1% counts as equal)."""
    if how == "all":
        return frame
    if how == "final":
        return final_rows(frame)
    if how == "envelope":
        tie = np.floor(np.log(frame[x].to_numpy(dtype=np.float64)) / np.log1p(TIE))
        ordered = frame.assign(_tie=tie).sort_values(["_tie", y], kind="stable").drop(columns="_tie")
        best_before = ordered[y].cummin().shift(1, fill_value=np.inf)
        return ordered[ordered[y] < best_before].reset_index(drop=True)
    raise AnalysisError(f"unknown point set {how!r}; choose one of {', '.join(POINT_SETS)}")


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's final row (is_final), or its last by step when the table has no is_final column."""
    if "is_final" in frame.columns:
        final = frame["is_final"].astype(str).str.lower().isin(("true", "1", "1.0"))
        return frame[final].reset_index(drop=True)
    require_columns(frame, ["run_id", "step"], "picking each run's final row (no is_final column)")
    return frame.sort_values("step", kind="stable").groupby("run_id", sort=False).tail(1).reset_index(drop=True)
