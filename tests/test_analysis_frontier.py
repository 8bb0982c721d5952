"""Frontiers of runs generated from a known L(N, D) give the known optimal-size exponent, three ways."""

import numpy as np
import pytest

from analysis.bootstrap import bootstrap
from analysis.errors import AnalysisError
from analysis.fit import fit_law
from analysis.frontier import envelope_frontier, flops_model, isoflop_frontier, parametric_frontier
from analysis.laws import CHINCHILLA
from analysis.points import final_rows
from analysis.synthetic import TOP1_LAW, optimal_size, synthetic_sweep

A_TRUE = TOP1_LAW["beta"] / (TOP1_LAW["alpha"] + TOP1_LAW["beta"])  # N_opt ∝ C^a when C = 6ND


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep()


def assert_exponents_match(allocation, tolerance):
    n, d = allocation.n_exponent, allocation.d_exponent
    assert n.value == pytest.approx(A_TRUE, abs=tolerance)
    assert n.low <= A_TRUE <= n.high
    assert d.value == pytest.approx(1 - A_TRUE, abs=tolerance)
    assert d.low <= 1 - A_TRUE <= d.high
    assert n.value + d.value == pytest.approx(1.0, abs=1e-6)  # C = 6ND exactly in the generated sweep


def test_envelope_gives_the_known_exponent(sweep):
    envelope = envelope_frontier(sweep, "top1_error", resamples=100)
    assert_exponents_match(envelope.allocation, tolerance=0.03)
    # where the optimum is bracketed, the best error over runs follows the true compute-optimal error
    # (sizes are 4 per decade, noise 1%)
    law, bracketed = TOP1_LAW, np.isin(envelope.compute, envelope.allocation.compute)
    compute = envelope.compute[bracketed]
    optimum = optimal_size(law, compute, 6.0)
    data = compute / (6.0 * optimum)
    best_possible = law["E"] + law["A"] / optimum ** law["alpha"] + law["B"] / data ** law["beta"]
    np.testing.assert_allclose(envelope.best[bracketed], best_possible, rtol=0.04)
    assert bracketed.sum() > 0.8 * len(envelope.compute)


def test_isoflop_parabolas_give_the_known_exponent_and_optima(sweep):
    isoflop = isoflop_frontier(sweep, "top1_error", flops_model(sweep), resamples=100)
    assert len(isoflop.parabolas) == 4 and all(p.problem is None for p in isoflop.parabolas)
    for parabola in isoflop.parabolas:
        assert parabola.n_opt == pytest.approx(optimal_size(TOP1_LAW, parabola.budget, 6.0), rel=0.2)
    assert_exponents_match(isoflop.allocation, tolerance=0.03)


def test_parametric_optimum_of_the_fitted_law_gives_the_known_exponent(sweep):
    final = final_rows(sweep)
    x = (final["params"].to_numpy(float), final["examples_seen"].to_numpy(float))
    fit = fit_law(CHINCHILLA, x, final["top1_error"].to_numpy(), starts=3)
    allocation = parametric_frontier(fit, flops_model(sweep), np.geomspace(1e14, 1e17, 12), boot=bootstrap(fit, 32))
    assert_exponents_match(allocation, tolerance=0.03)
    fitted = fit.params["beta"] / (fit.params["alpha"] + fit.params["beta"])
    assert allocation.n_exponent.value == pytest.approx(fitted, abs=1e-3)  # closed form when C ∝ N·D


def test_flops_per_example_is_recovered(sweep):
    model = flops_model(sweep)
    assert model.exponent == pytest.approx(1.0, abs=1e-6) and model.coefficient == pytest.approx(6.0, rel=1e-4)


def test_a_single_model_size_has_no_frontier(sweep):
    one_size = sweep[sweep["params"] == sweep["params"].iloc[0]]
    with pytest.raises(AnalysisError, match="needs runs of at least 3 model sizes; the table has 1"):
        envelope_frontier(one_size, "top1_error")
    with pytest.raises(AnalysisError, match="needs runs of at least 3 model sizes"):
        isoflop_frontier(one_size, "top1_error", flops_model(sweep))
    with pytest.raises(AnalysisError, match="single model size"):
        flops_model(one_size)


def test_budgets_whose_minimum_is_not_bracketed_are_left_out_with_a_reason():
    sweep = synthetic_sweep(noise=0.0)  # with noise, three sizes on one side can fake a minimum
    final = final_rows(sweep)
    budget = 10.0 ** np.round(np.log10(final["compute"]))
    small = final["params"] < 0.9 * optimal_size(TOP1_LAW, budget, 6.0)  # only models below the optimum
    with pytest.raises(AnalysisError, match="at least 2 compute budgets with a bracketed minimum; found 1 of 4"):
        isoflop_frontier(final[small | (budget == 1e17)], "top1_error", flops_model(sweep))
    isoflop = isoflop_frontier(final[small | (budget >= 1e16)], "top1_error", flops_model(sweep), resamples=20)
    assert isoflop.allocation.compute == pytest.approx([1e16, 1e17], rel=1e-6)
    assert len(isoflop.allocation.warnings) == 2
    assert all("left out" in warning for warning in isoflop.allocation.warnings)
