"""`report` (and so `plot`) on a generated sweep: every figure in every format, and one HTML page."""

import contextlib
import io
import json

import matplotlib.image
import pytest

from analysis.cli import main
from analysis.synthetic import synthetic_sweep

FIGURES = ("error_vs_compute", "isoflop", "error_vs_data", "error_vs_params", "optimal_allocation")
A_TRUE = 0.28 / (0.34 + 0.28)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    table = synthetic_sweep()
    table.loc[table.index[:3], "status"] = "failed"
    table.to_csv(folder / "results.csv", index=False)
    out = folder / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["report", str(folder / "results.csv"), "--out", str(out), "--law", "saturating",
                       "--law", "chinchilla", "--starts", "2", "--bootstrap", "16"])
    assert status == 0
    (out / "stdout.txt").write_text(printed.getvalue())
    return out


def test_report_prints_each_fitted_law_on_one_line(report):
    printed = (report / "stdout.txt").read_text().splitlines()
    for law, first in (("saturating", "a="), ("chinchilla", "E=")):
        (line,) = [line for line in printed if line.startswith(f"{law}: ")]
        assert f" with {first}" in line and "points)" in line


def test_every_figure_is_written_in_every_format(report):
    for name in FIGURES:
        height, width, _ = matplotlib.image.imread(report / f"{name}.png").shape
        assert width >= 900 and height >= 500, name
        svg = (report / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        assert (report / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_figures_carry_labelled_axes_and_legends(report):
    compute = (report / "error_vs_compute.svg").read_text()
    for text in ("Training compute C (FLOPs)", "Top-1 error", "Parameters N", "extrapolation", "bootstrap band"):
        assert text in compute
    assert "minimum (N_opt)" in (report / "isoflop.svg").read_text()
    allocation = (report / "optimal_allocation.svg").read_text()
    assert "Optimal parameters N_opt" in allocation and "Optimal examples D_opt" in allocation


def test_report_page_embeds_the_figures_and_the_tables(report):
    page = (report / "report.html").read_text()
    assert page.count("data:image/svg+xml;base64,") == len(FIGURES)
    for text in ("3 dropped", "Fitted laws", "saturating", "chinchilla", "Backtest", "Compute-optimal frontier",
                 "IsoFLOP parabolas (Hoffmann approach 2)"):
        assert text in page


def test_report_record_holds_intervals_frontiers_and_backtest(report):
    record = json.loads((report / "report.json").read_text())
    assert record["dropped_rows"] == 3
    assert [law["law"] for law in record["laws"]] == ["saturating", "chinchilla"]
    for law in record["laws"]:
        for estimate in law["params"].values():
            assert estimate["low"] <= estimate["high"]
    assert len(record["frontiers"]) == 3
    for frontier in record["frontiers"]:
        assert frontier["n_exponent"]["value"] == pytest.approx(A_TRUE, abs=0.04)
    assert sorted(row["rank"] for row in record["backtest"]["rows"]) == [1, 2]
