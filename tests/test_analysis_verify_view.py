"""The report's predict-then-verify view: the frontier law refitted below the backtest's cut-off (or --verify-below's)
predicts the runs above it; on data drawn from that very law (a hand-written formula plus log-normal noise) the
prediction intervals cover about their nominal share; the figure and the page show it, or say why it is not done."""

import html
import json

import numpy as np
import pandas as pd
import pytest
from law_formulas import noisy, power

from analysis.commands import write_json
from analysis.laws import POWER
from analysis.plots import draw_figures
from analysis.report import write_report
from analysis.request import FitRequest
from analysis.study import StudyOptions, run_study
from analysis.summary import study_record
from analysis.table.load import Results

COMPUTE = np.geomspace(1e12, 1e18, 24)
CUTOFF = 10 ** (12 + 0.75 * 6)  # the top quarter of the log-compute range held out: 10^16.5
HELD_OUT = int(np.sum(COMPUTE >= CUTOFF))  # 6 runs, 1e16.7 to 1e18
NOISE = 0.02  # standard deviation of log error: wide enough that the law's own confidence band misses it


def table() -> Results:
    """One run per compute, error 5·C^-0.1 (a power law: the law fitted is the true one) with log-normal noise."""
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(COMPUTE.size)], "compute": COMPUTE,
                          "top1_error": noisy(power(COMPUTE, 5.0, 0.1), NOISE, seed=3)})
    return Results(frame=frame, source="power.csv", dropped=0)


def study(**options):
    return run_study(table(), "top1_error", [FitRequest(law=POWER, x=("compute",), y="top1_error", points="all",
                                                        starts=2)],
                     StudyOptions(resamples=40, with_backtest=False, **options))


@pytest.fixture(scope="module")
def checked():
    return study()


def test_the_law_is_checked_above_the_backtests_cut_off_and_covers_about_its_level(checked):
    verification = checked.verification
    assert verification.law == "power" and verification.column == "compute"
    assert verification.cutoff == pytest.approx(CUTOFF, rel=1e-9)
    assert verification.train_points == COMPUTE.size - HELD_OUT and len(verification.rows) == HELD_OUT
    assert sorted(row.position for row in verification.rows) == pytest.approx(COMPUTE[-HELD_OUT:])
    for row in verification.rows:  # the prediction is the true law's value within the noise
        assert row.predicted == pytest.approx(power(row.position, 5.0, 0.1), rel=4 * NOISE)
        assert row.low < row.predicted < row.high
    # nominal 95%: 6 held-out points from the true law should all, or all but one, fall inside
    assert verification.coverage >= 5 / HELD_OUT
    assert checked.verification_note.startswith("the backtest's cut-off")


def test_the_record_figure_and_page_show_the_check(checked, tmp_path):
    record = study_record(checked)
    write_json(tmp_path / "report.json", record)
    saved = json.loads((tmp_path / "report.json").read_text())["verification"]
    assert saved["coverage"] == sum(row["inside"] for row in saved["rows"]) / HELD_OUT
    written, _ = draw_figures(checked, tmp_path, ["svg"])
    svg = written["predicted_vs_observed"][0].read_text()
    inside = sum(row.inside for row in checked.verification.rows)
    for text in ("predicted = observed", "nominal 95%", f"{inside} of {HELD_OUT} held-out points inside",
                 "Observed top-1 error", "Predicted top-1 error"):
        assert text in svg, text
    page = write_report(record, written, tmp_path).read_text()
    assert "Predict, then verify" in page and f"{inside} of {HELD_OUT} held-out points inside their 95%" in page


@pytest.mark.parametrize("options, reason", [
    ({"verify_below": ("compute", 2e12)}, "power fitted where compute < 2e+12 (given by --verify-below): "
                                           "law power has 2 parameters but only 2 points"),
    ({"resamples": 0}, "the bootstrap is off"),
])
def test_when_the_check_cannot_be_done_the_warnings_and_the_page_say_why(options, reason, tmp_path):
    resamples = options.pop("resamples", 8)
    result = run_study(table(), "top1_error", [FitRequest(law=POWER, x=("compute",), y="top1_error",
                                                          points="all", starts=2)],
                       StudyOptions(resamples=resamples, with_backtest=False, **options))
    assert result.verification is None and reason in result.verification_note
    assert f"skipped the predict-then-verify check: {result.verification_note}" in result.warnings
    written, skipped = draw_figures(result, tmp_path, ["svg"])
    assert "predicted_vs_observed" not in written and any("predicted_vs_observed" in item for item in skipped)
    page = write_report(study_record(result), written, tmp_path).read_text()
    assert f"Not done: {result.verification_note}" in html.unescape(page)
