"""The analysis in an accelerator image (no matplotlib, pyarrow, sklearn, tensorflow, wandb): every module but the
plotting ones imports, fitting works, drawing stops at once with one error line saying what to install, and the
results table is written as CSV alone, with a warning."""

import json
import pkgutil
import sys

import numpy as np
import pandas as pd
from helpers import NOT_IN_ACCELERATOR_IMAGES, run_without

import analysis

A, B = 0.9 * 1e14 ** 0.3, 0.3  # the power law E = A·C^-B the table is sampled from, exactly
SCRIPT = """
import contextlib, importlib, io, json, sys
from pathlib import Path

names, tmp = json.loads(sys.argv[1]), Path(sys.argv[2])
record = {"failed": {}}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as error:
        record["failed"][name] = error.name
record["scaling_imported"] = any(name.split(".")[0] == "scaling" for name in sys.modules)


def run(call, *args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        value = call(*args)
    return {"value": value, "out": out.getvalue(), "err": err.getvalue()}


from analysis.cli import main

record["fit"] = run(main, ["fit", str(tmp / "t.csv"), "--law", "power", "--starts", "2", "--bootstrap", "0", "--json",
                           str(tmp / "fit.json")])
record["report"] = run(main, ["report", str(tmp / "t.csv"), "--out", str(tmp / "report")])
record["parquet"] = run(main, ["fit", str(tmp / "t.parquet"), "--law", "power", "--bootstrap", "0"])

from scaling.sweep.results import write_results

written = run(write_results, tmp / "root")
record["results"] = {**written, "value": [path and str(path) for path in written["value"][:2]]}
(tmp / "record.json").write_text(json.dumps(record))
"""


def test_analysis_imports_fits_and_refuses_to_draw_without_matplotlib_or_pyarrow(tmp_path):
    names = [module.name for module in pkgutil.walk_packages(analysis.__path__, "analysis.")]
    plotting = {name for name in names
                if name in ("analysis.plots", "analysis.history.plots") or name.startswith("analysis.plots.")}
    compute = np.logspace(14, 18, 9)
    table = pd.DataFrame({"compute": compute, "top1_error": A * compute ** -B})
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_parquet(tmp_path / "t.parquet", index=False)
    (tmp_path / "root").mkdir()
    table.to_parquet(tmp_path / "root" / "results.parquet", index=False)  # an older table, to be removed

    done = run_without(NOT_IN_ACCELERATOR_IMAGES, [sys.executable, "-c", SCRIPT, json.dumps(names), str(tmp_path)])
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "record.json").read_text())

    assert len(plotting) >= 6 and set(record["failed"]) == plotting, record["failed"]
    assert all(missing.split(".")[0] == "matplotlib" for missing in record["failed"].values()), record["failed"]
    assert not record["scaling_imported"]

    fit = record["fit"]
    assert fit["value"] == 0 and "power: E = a·x^(-b)" in fit["out"], fit
    params = json.loads((tmp_path / "fit.json").read_text())["laws"][0]["params"]
    assert abs(params["b"]["value"] - B) < 1e-4 and abs(params["a"]["value"] / A - 1) < 1e-3, params

    for name, package in (("report", "matplotlib"), ("parquet", "pyarrow")):
        refused = record[name]
        lines = refused["err"].splitlines()
        assert refused["value"] == 2 and len(lines) == 1 and lines[0].startswith("error:"), refused
        assert f"pip install {package}" in lines[0], lines
    assert not (tmp_path / "report").exists()  # refused before any work

    results = record["results"]
    root = tmp_path / "root"
    assert results["value"] == [str(root / "results.csv"), None], results
    assert results["err"].startswith("warning:") and len(results["err"].splitlines()) == 1, results
    assert "pip install pyarrow" in results["err"] and "removed" in results["err"], results
    assert "run_id" in pd.read_csv(root / "results.csv").columns
    assert not (root / "results.parquet").exists()
