"""`report` (and so `plot`) on a generated sweep: every figure in every format, and one HTML page led by its
headline and provenance, with degenerate fits flagged and kept out of the headline, and the headline law
checked on the runs above the backtest's cut-off (predict, then verify)."""

import contextlib
import io
import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.report import write_index
from analysis.synthetic import synthetic_sweep

FIGURES = ("error_vs_compute", "isoflop", "error_vs_data", "error_vs_params", "optimal_allocation",
           "predicted_vs_observed")
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
                       "--law", "power", "--law", "chinchilla", "--starts", "2", "--bootstrap", "16"])
    assert status == 0
    (out / "stdout.txt").write_text(printed.getvalue())
    return out


def test_report_prints_each_fitted_law_on_one_line(report):
    printed = (report / "stdout.txt").read_text().splitlines()
    for law, first in (("saturating", "a="), ("power", "a="), ("chinchilla", "E=")):
        (line,) = [line for line in printed if line.startswith(f"{law}: ")]
        assert f" with {first}" in line and "points)" in line


def test_report_prints_the_headline_and_the_check_of_its_law(report):
    printed = (report / "stdout.txt").read_text()
    assert "\nFrontier law: power, E = a·x^(-b) with a = " in printed
    assert "\nCompute-optimal allocation (IsoFLOP parabolas" in printed
    assert "\npredict, then verify: power fitted to " in printed and "nominal 95%)" in printed


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
    assert [law["law"] for law in record["laws"]] == ["saturating", "power", "chinchilla"]
    for law in record["laws"]:
        for estimate in law["params"].values():
            assert estimate["low"] <= estimate["high"]
    assert len(record["frontiers"]) == 3
    for frontier in record["frontiers"]:
        assert frontier["n_exponent"]["value"] == pytest.approx(A_TRUE, abs=0.04)
    assert sorted(row["rank"] for row in record["backtest"]["rows"]) == [1, 2, 3]  # every law scored


def test_the_record_leads_with_the_headline_and_its_provenance(report):
    record = json.loads((report / "report.json").read_text())
    assert list(record)[:2] == ["headline", "provenance"]
    provenance = record["provenance"]
    assert provenance["table"].endswith("results.csv") and provenance["dataset"] == ["synthetic"]
    assert provenance["family"] == ["synthetic"] and provenance["packages"]["numpy"]
    # the envelope of a law E + A/N^alpha + B/D^beta is a power law plus a floor, with no offset: the
    # saturating law's d runs to 0, so it is degenerate and the headline falls to the power law
    (saturating,) = [law for law in record["laws"] if law["law"] == "saturating"]
    assert "d at its lower bound 0" in saturating["degenerate"]
    headline = record["headline"]
    assert headline["law"] == "power" and headline["frontier"] == "IsoFLOP parabolas (Hoffmann approach 2)"
    assert headline["at_compute"] == pytest.approx(10 * 1e17, rel=0.05)  # the largest budget is 1e17
    assert headline["predicted"]["low"] <= headline["predicted"]["value"] <= headline["predicted"]["high"]
    assert any(w.startswith("saturating: degenerate (d at its lower bound 0") for w in record["warnings"])


def test_the_page_opens_with_the_headline_and_flags_the_degenerate_fit(report):
    page = (report / "report.html").read_text()
    assert page.index("Headline") < page.index("Warnings") < page.index("<figure")
    assert "Frontier law: power" in page and "numpy" in page
    assert "Degenerate fit, not a result: d at its lower bound 0" in page


def test_every_figure_extrapolates_by_the_same_factor(report):
    for name in ("error_vs_compute", "optimal_allocation"):
        assert "extrapolation (x10)" in (report / f"{name}.svg").read_text(), name


def test_the_headline_law_is_checked_on_the_runs_above_the_backtests_cut_off(report):
    record = json.loads((report / "report.json").read_text())
    checked = record["verification"]
    frame = pd.read_csv(report.parent / "results.csv")
    compute = frame.loc[frame["status"] == "completed", "compute"]
    low, high = np.log(compute.min()), np.log(compute.max())
    assert checked["law"] == record["headline"]["law"] and checked["column"] == "compute"
    assert checked["cutoff"] == pytest.approx(np.exp(low + 0.75 * (high - low)))  # the top quarter held out
    assert checked["cutoff"] == pytest.approx(record["backtest"]["cutoff"])
    assert checked["rows"] and all(row["position"] >= checked["cutoff"] for row in checked["rows"])
    assert checked["coverage"] == sum(row["inside"] for row in checked["rows"]) / len(checked["rows"])
    assert record["verification_note"].startswith("the backtest's cut-off")
    svg = (report / "predicted_vs_observed.svg").read_text()
    assert "predicted = observed" in svg and "(nominal 95%)" in svg
    page = (report / "report.html").read_text()
    assert page.index("<h2>Backtest</h2>") < page.index("<h2>Predict, then verify</h2>")
    assert "held-out points inside their 95% prediction interval (coverage" in page


def test_the_page_labels_the_mean_huber_loss_and_gives_the_sum(report):
    record = json.loads((report / "report.json").read_text())
    power = next(law for law in record["laws"] if law["law"] == "power")
    assert power["loss_sum"] == pytest.approx(power["loss"] * power["num_points"])  # unit weights
    assert "mean Huber loss" in (report / "report.html").read_text()
    assert "Huber loss (sum, as Hoffmann et al.)" in (report / "report.html").read_text()


def test_the_index_shows_each_groups_headline(tmp_path):
    group = {"report": "classes-10/report.html", "value": 10, "rows": 5, "zero_errors": None, "laws": [],
             "frontiers": [], "warnings": [], "headline": {"text": ["Frontier law: power, E = a·x^(-b).",
                                                                    "Predicted top1_error at compute = 1e+18."]}}
    summary = {"table": "t.csv", "y": "top1_error", "by": "num_classes", "automatic": False,
               "rows_without_value": 0, "groups": [group]}
    page = write_index(summary, tmp_path).read_text()
    assert "<th class='text'>headline</th>" in page
    assert "Frontier law: power, E = a·x^(-b). Predicted top1_error at compute = 1e+18." in page
