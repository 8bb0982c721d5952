"""Degenerate fits (a parameter at a bound, an interval wider than a decade, fewer than 3 model sizes) are
flagged, never the headline, and marked on their figure. The data come from hand-written formulas."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import Estimate
from analysis.degenerate import allocation_problems, bound_side, interval_span, law_problems
from analysis.frontier import Allocation
from analysis.headline import headline_text
from analysis.laws import CHINCHILLA, POWER, SATURATING
from analysis.plots import draw_figures
from analysis.request import FitRequest, fit_request
from analysis.study import StudyOptions, run_study
from analysis.table.load import Results

COMPUTE = np.geomspace(1e12, 1e18, 24)
FAST = StudyOptions(resamples=8, with_backtest=False)


def power_table(noise: float = 0.004) -> pd.DataFrame:
    """One run per compute, error 5·C^-0.1 (no floor, no offset), 24 model sizes."""
    wobble = np.exp(noise * np.sin(np.arange(COMPUTE.size) * 2.3))  # fixed, seed-free noise
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(COMPUTE.size)], "compute": COMPUTE,
                         "params": np.geomspace(1e5, 1e8, COMPUTE.size).round(),
                         "top1_error": 5.0 * COMPUTE ** -0.1 * wobble})


def request(law, x=("compute",)):
    return FitRequest(law=law, x=x, y="top1_error", points="all", starts=2)


@pytest.fixture(scope="module")
def study():
    """Saturating listed first, then power, on a pure power law: saturating's floor c and offset d run to 0."""
    table = Results(frame=power_table(), source="power.csv", dropped=0)
    return run_study(table, "top1_error", [request(SATURATING), request(POWER)], FAST)


def test_a_parameter_at_its_bound_is_flagged_and_never_the_headline(study):
    problems = study.problems["saturating"]
    assert any(problem.startswith(("c at its lower bound 0", "d at its lower bound 0")) for problem in problems)
    assert study.problems["power"] == ()
    assert study.headline.law.fit.law.name == "power" and study.frontier is study.headline.law
    assert any(w.startswith("saturating: degenerate (") and "not used as the headline" in w for w in study.warnings)
    # the headline's prediction at 10x the largest compute is the generating formula's (within the noise)
    assert study.headline.at == pytest.approx(10 * COMPUTE.max())
    assert study.headline.predicted.value == pytest.approx(5.0 * (10 * COMPUTE.max()) ** -0.1, rel=0.02)


def test_the_bootstrap_resamples_runs_by_default(study):
    assert {law.boot.resampled for law in study.laws} == {"runs"}
    rowwise = run_study(Results(frame=power_table().drop(columns="run_id"), source="t", dropped=0), "top1_error",
                        [request(POWER)], FAST)
    assert rowwise.laws[0].boot.resampled == "rows"


def test_with_no_supported_law_the_headline_says_so_and_the_figure_is_marked(tmp_path):
    table = Results(frame=power_table(), source="power.csv", dropped=0)
    study = run_study(table, "top1_error", [request(SATURATING)], FAST)
    assert study.headline.law is None and study.headline.predicted is None
    assert study.headline.law_why.startswith("no law is supported by these data: every one is degenerate (saturating:")
    assert study.frontier.fit.law.name == "saturating"  # still drawn, but marked
    draw_figures(study, tmp_path, ["svg"])
    svg = (tmp_path / "error_vs_compute.svg").read_text()
    red_box = " ".join(re.findall(r"fill: #b00020[^>]*>([^<]*)<", svg))  # one <text> per wrapped line
    assert re.match(r"degenerate saturating fit: [cd] at its lower bound 0", red_box), red_box


def test_a_law_fitted_on_two_model_sizes_is_degenerate():
    sizes = np.repeat([1e6, 1e7], 12)
    data = np.tile(np.geomspace(1e6, 1e9, 12), 2)
    error = 0.1 + 20.0 / sizes**0.34 + 12.0 / data**0.28  # Hoffmann's form, written out
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(24)], "params": sizes, "examples_seen": data,
                          "top1_error": error})
    fitted = fit_request(request(CHINCHILLA, ("params", "examples_seen")), frame)
    assert "rests on 2 model sizes (< 3)" in law_problems(fitted)


def test_an_interval_spanning_more_than_a_decade_is_flagged():
    """A floor c of 0.05 under a steep power law seen over one decade: the data barely see the floor."""
    compute = np.geomspace(1e12, 1e13, 12)
    wobble = np.exp(0.03 * np.sin(np.arange(12) * 2.3))
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(12)], "compute": compute, "params": compute / 1e6,
                          "top1_error": (0.05 + 2e5 * compute ** -0.5) * wobble})
    fitted = fit_request(request(SATURATING), frame, resamples=24, by_run=True)
    problems = law_problems(fitted)
    assert any(" interval [" in problem and ("x (> 10x)" in problem or "contains 0" in problem)
               for problem in problems), problems


def test_interval_and_bound_rules():
    assert interval_span(Estimate(1.0, 0.5, 2.0)) is None  # 4x
    assert interval_span(Estimate(1.0, 0.05, 2.0)) == "spans 40x (> 10x)"
    assert interval_span(Estimate(-0.3, -0.6, -0.05)) == "spans 12x (> 10x)"  # negative: compared on |value|
    assert interval_span(Estimate(0.1, -0.1, 0.3)) == "contains 0 (sign undetermined)"
    assert interval_span(Estimate(1.0, math.nan, math.nan)) is None  # no interval: nothing to judge
    assert bound_side(0.0, 5.0, 4.999) == "at its upper bound 5"
    assert bound_side(0.0, 5.0, 2.5) is None
    assert bound_side(0.0, math.inf, 1e-5) == "at its lower bound 0"
    assert bound_side(0.0, math.inf, 0.5) is None
    assert bound_side(0.0, math.inf, 1e4) == "ran off to infinity"


def test_an_envelope_exponent_from_two_model_sizes_is_degenerate():
    """The issue's case: N_opt exponent 1.039 [0.000, 1.066] read off two distinct model sizes."""
    compute = np.geomspace(1e13, 1e15, 6)
    n_opt = np.array([1e5, 1e5, 1e5, 1e6, 1e6, 1e6])
    envelope = Allocation("envelope (Hoffmann approach 1)", compute, n_opt, compute / (6 * n_opt),
                          Estimate(1.039, 0.0, 1.066), Estimate(-0.039, -0.066, 0.0), 1.0, 1.0)
    problems = allocation_problems(envelope)
    assert "N_opt from 2 distinct model sizes (< 3)" in problems
    assert "N_opt exponent interval [0, 1.07] contains 0 (sign undetermined)" in problems
    sound = Allocation("IsoFLOP", compute, compute**0.5, compute**0.5, Estimate(0.5, 0.45, 0.55),
                       Estimate(0.5, 0.45, 0.55), 1.0, 1.0)
    assert allocation_problems(sound) == ()
    assert allocation_problems(sound, ("E at its lower bound 0",)) == ("from a degenerate law (E at its lower "
                                                                       "bound 0)",)


def test_a_prediction_below_one_evaluation_example_is_said_to_be_unmeasurable():
    # 5·(1e19)^-0.1 = 0.063 predicted at 10x the largest compute; an evaluation set of 20 resolves 1/20 = 0.05
    # (not below it), one of 40 resolves 0.025 (not below), so only a set of 10 (0.1) puts it below resolution
    for size, below in ((10, True), (20, False), (40, False)):
        frame = power_table().assign(eval_examples=size)
        found = run_study(Results(frame=frame, source="t", dropped=0), "top1_error", [request(POWER)], FAST)
        assert found.headline.resolution == pytest.approx(1 / size)
        text = " ".join(headline_text(found.headline, "top1_error", "compute"))
        assert ("below one example of the evaluation set (1/10 = 0.1)" in text) is below
    without = run_study(Results(frame=power_table(), source="t", dropped=0), "top1_error", [request(POWER)], FAST)
    assert without.headline.resolution is None
