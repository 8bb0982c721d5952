"""The record of ImageNet accuracy shipped with the package (analysis/history/data/imagenet_history.csv, whose
conventions are in analysis/history/data/README.md): loading it, checking it, and picking the rows a fit uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.table.contract import require_columns

HISTORY_TABLE = Path(__file__).with_name("data") / "imagenet_history.csv"
KINDS = ("ilsvrc-winner", "ilsvrc-entry", "human", "model")
PROTOCOLS = ("single-crop", "multi-crop", "ensemble", "zero-shot", "linear-probe", "human", "unknown")
EXTRA_DATA = {"none": "ImageNet-1k only", "imagenet-21k": "+ ImageNet-21k",
              "private-or-web": "+ larger private or web data", "n/a": "human"}
NOT_FITTED = ("zero-shot", "linear-probe", "ensemble")  # other questions than a trained model's error
GROUPS = {"imagenet-1k": ("none",), "extra-data": ("imagenet-21k", "private-or-web")}
GROUP_LABELS = {"imagenet-1k": "ImageNet-1k only", "extra-data": "with extra data"}
COLUMNS = ("kind", "model", "year", "date", "top1_error", "top5_error", "protocol", "extra_data", "compute",
           "source")
NUMERIC = ("year", "top1_error", "top5_error", "compute", "params", "forward_macs", "eval_resolution")


def load_history(path: str | Path | None = None) -> pd.DataFrame:
    """The history table (the shipped one by default), checked, with a `decimal_year` column (the date as a
    fraction of its year; mid-year for rows that only have a year)."""
    path = Path(path) if path is not None else HISTORY_TABLE
    if not path.is_file():
        raise AnalysisError(f"history table {path} does not exist; leave out --table to use the shipped one "
                            f"({HISTORY_TABLE})")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])  # "n/a" is a category here
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise AnalysisError(f"cannot read history table {path} as CSV ({error})") from error
    require_columns(frame, COLUMNS, f"the history table {path}")
    for column in NUMERIC:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("kind", "model", "protocol", "extra_data", "source"):
        frame[column] = frame[column].fillna("").astype(str).str.strip()
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    _check(frame, dates, path)
    fraction = (dates.dt.day_of_year - 1) / np.where(dates.dt.is_leap_year, 366.0, 365.0)
    frame["decimal_year"] = np.where(dates.notna(), dates.dt.year + fraction, frame["year"] + 0.5)
    return frame


def fit_rows(frame: pd.DataFrame, group: str, y: str = "top1_error", needs: tuple[str, ...] = ()) -> pd.DataFrame:
    """The model rows of one group ("imagenet-1k" or "extra-data") that a trend is fitted to: trained models
    (no ensembles, zero-shot or linear-probe rows) with `y` and every column of `needs`."""
    if group not in GROUPS:
        raise AnalysisError(f"unknown group {group!r}; choose one of {', '.join(GROUPS)}")
    keep = (frame["kind"] == "model") & ~frame["protocol"].isin(NOT_FITTED) & frame["extra_data"].isin(GROUPS[group])
    for column in (y, *needs):
        keep &= frame[column].notna()
    return frame[keep].reset_index(drop=True)


def _check(frame: pd.DataFrame, dates: pd.Series, path: Path) -> None:
    """Refuse rows the figures and fits would misread, naming the row and the fix."""
    problems = []
    for index, row in frame.iterrows():
        where = f"row {index + 2} ({row['model'] or 'no model name'})"
        if row["kind"] not in KINDS:
            problems.append(f"{where}: kind {row['kind']!r} is not one of {', '.join(KINDS)}")
        if row["protocol"] not in PROTOCOLS:
            problems.append(f"{where}: protocol {row['protocol']!r} is not one of {', '.join(PROTOCOLS)}")
        if row["extra_data"] not in EXTRA_DATA:
            problems.append(f"{where}: extra_data {row['extra_data']!r} is not one of {', '.join(EXTRA_DATA)}")
        if not row["source"]:
            problems.append(f"{where}: no source")
        if not np.isfinite(row["year"]):
            problems.append(f"{where}: no year")
        if pd.notna(row["date"]) and pd.isna(dates[index]):
            problems.append(f"{where}: date {row['date']!r} is not YYYY-MM-DD")
        elif pd.notna(dates[index]) and dates[index].year != row["year"]:
            problems.append(f"{where}: date {row['date']} and year {row['year']:g} disagree")
        for column in ("top1_error", "top5_error"):
            value = row[column]
            if np.isfinite(value) and not 0 < value < 1:
                problems.append(f"{where}: {column} = {value:g} is not a fraction in (0, 1) (write 0.247 for 24.7%)")
        if not (np.isfinite(row["top1_error"]) or np.isfinite(row["top5_error"])):
            problems.append(f"{where}: neither top1_error nor top5_error")
        if np.isfinite(row["compute"]) and row["compute"] <= 0:
            problems.append(f"{where}: compute must be positive (training FLOPs), got {row['compute']:g}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise AnalysisError(f"history table {path} has bad rows: {shown}")
