"""The results table of a sweep root, written as CSV and Parquet (CSV alone where pyarrow is missing). The rows and
their columns are the contract with `analysis`, built by its one reader of run workdirs (analysis.table.workdirs)."""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from analysis.table.contract import RESULTS_STEM
from analysis.table.workdirs import read_workdirs
from scaling.errors import ConfigError


def write_results(root: Path, out: Path | None = None, run_ids: Collection[str] | None = None,
                  ) -> tuple[Path, Path | None, pd.DataFrame]:
    """Write `results.csv` and `results.parquet` (to `out` or the root; an empty table if it holds no run) of the
    runs under `root`, or of those named in `run_ids` only; return their paths and the table. Without a Parquet
    engine (pyarrow), the CSV alone, a warning, and None for the Parquet path (an older Parquet table there is
    removed, so that the two never disagree)."""
    table = read_workdirs(root, allow_empty=True, run_ids=run_ids)
    stem = out.with_suffix("") if out else Path(root) / RESULTS_STEM
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    try:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        for path, write in ((csv_path, table.to_csv), (parquet_path, table.to_parquet)):
            temporary = path.with_name(path.name + ".tmp")  # replaced at once: never half a table
            try:
                write(temporary, index=False)
            except ImportError as error:  # pandas found no Parquet engine; it fails before opening the file
                removed = f" (the older {path.name} is removed)" if path.exists() else ""
                path.unlink(missing_ok=True)
                reason = str(error).partition("\n")[0]
                print(f"warning: {path} not written: Parquet needs pyarrow, which cannot be imported here ({reason}); "
                      f"the table is in {csv_path}{removed}; pip install pyarrow to write Parquet too", file=sys.stderr)
                parquet_path = None
                continue
            temporary.replace(path)
    except OSError as error:
        raise ConfigError(f"cannot write the results table to {csv_path} ({error.strerror or error}); give a "
                          "writable --out") from None
    return csv_path, parquet_path, table
