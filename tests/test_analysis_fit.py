"""The fit: bad input is refused with a clear message, trouble is warned about, options do what they say. Data
come from the laws written out by hand (tests/law_formulas.py), never from the `predict` the fit inverts."""

import numpy as np
import pytest
from law_formulas import chinchilla, noisy, power

from analysis.bootstrap import bootstrap
from analysis.errors import AnalysisError
from analysis.fit import fit_law, start_grid
from analysis.laws import CHINCHILLA, M4, POWER, SATURATING, predict

COMPUTE = np.geomspace(1e15, 1e20, 30)
TRUTH = {"a": 40.0, "b": 0.1}


def power_data(noise=0.01, seed=0):
    return COMPUTE.copy(), noisy(power(COMPUTE, **TRUTH), noise, seed)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_y_is_an_error(bad):
    x, y = power_data()
    y[3] = bad
    with pytest.raises(AnalysisError, match="y column 'y' has 1 NaN or infinite values"):
        fit_law(POWER, x, y, starts=2)


def test_nan_x_is_an_error_naming_the_run():
    x, y = power_data()
    x[5] = np.nan
    labels = [f"run{i}" for i in range(len(x))]
    with pytest.raises(AnalysisError, match=r"NaN or infinite values \(in runs run5\)"):
        fit_law(POWER, x, y, starts=2, x_names=["compute"], labels=labels)


@pytest.mark.parametrize("bad", [0.0, -1e16])
def test_non_positive_compute_or_error_is_an_error(bad):
    x, y = power_data()
    x[0] = bad
    with pytest.raises(AnalysisError, match=r"zero or negative.*log space"):
        fit_law(POWER, x, y, starts=2)
    x, y = power_data()
    y[0] = bad
    with pytest.raises(AnalysisError, match="zero or negative"):
        fit_law(POWER, x, y, starts=2)


def test_fewer_points_than_parameters_is_an_error():
    x, y = power_data()
    with pytest.raises(AnalysisError, match="4 parameters but only 4 points; it needs at least 5"):
        fit_law(SATURATING, x[:4], y[:4], starts=2)


def test_zero_weights_do_not_count_as_points():
    x, y = power_data()
    weights = np.zeros_like(y)
    weights[:2] = 1.0
    with pytest.raises(AnalysisError, match="only 2 points"):
        fit_law(POWER, x, y, weights=weights, starts=2)


def test_a_single_model_size_is_an_error_for_a_joint_law():
    sizes, seen = np.full(20, 1e7), np.geomspace(1e6, 1e9, 20)
    y = noisy(chinchilla(sizes, seen, E=0.1, A=20.0, B=12.0, alpha=0.34, beta=0.28), 0.01, seed=0)
    with pytest.raises(AnalysisError, match=r"'params' has a single value.*add runs of other sizes"):
        fit_law(CHINCHILLA, (sizes, seen), y, starts=2, x_names=["params", "examples_seen"])


def test_wrong_number_of_inputs_is_an_error():
    x, y = power_data()
    with pytest.raises(AnalysisError, match="chinchilla takes 2 input"):
        fit_law(CHINCHILLA, x, y, starts=2)


def test_fit_that_does_not_converge_says_so():
    x, y = power_data()
    fit = fit_law(POWER, x, y, starts=2, max_evaluations=3)
    assert fit.status == "out of evaluations"
    assert any("did not converge" in warning for warning in fit.warnings)


def test_parameter_pinned_at_a_bound_is_warned_about():
    x = COMPUTE
    y = noisy(power(x, a=1e30, b=2.0), 0.01, seed=0)
    fit = fit_law(POWER, x, y, starts=2, bounds={"b": (0.0, 1.0)})
    assert fit.params["b"] == pytest.approx(1.0, abs=1e-3)
    assert any("b = 1 ran to its upper bound (1)" in warning for warning in fit.warnings)


def test_bounds_of_unit_dependent_or_unknown_parameters_are_refused():
    x, y = power_data()
    with pytest.raises(AnalysisError, match="depends on the units"):
        fit_law(POWER, x, y, bounds={"a": (1.0, 2.0)})
    with pytest.raises(AnalysisError, match=r"has no parameter\(s\) \['z'\]"):
        fit_law(POWER, x, y, bounds={"z": (1.0, 2.0)})
    with pytest.raises(AnalysisError, match="is empty"):
        fit_law(POWER, x, y, bounds={"b": (1.0, 0.5)})


def test_zero_weight_outliers_are_ignored():
    x, y = power_data()
    clean = fit_law(POWER, x, y, starts=2)
    spoiled = y.copy()
    spoiled[::5] *= 3.0
    weights = np.ones_like(y)
    weights[::5] = 0.0
    weighted = fit_law(POWER, x, spoiled, weights=weights, starts=2)
    unweighted = fit_law(POWER, x, spoiled, starts=2)
    kept = weights > 0
    alone = fit_law(POWER, x[kept], y[kept], starts=2)
    assert weighted.params["b"] == pytest.approx(alone.params["b"], rel=1e-6)
    assert abs(unweighted.params["b"] - clean.params["b"]) > abs(weighted.params["b"] - clean.params["b"])


def test_small_huber_delta_resists_an_outlier_that_pulls_least_squares():
    x, y = power_data(noise=0.005)
    y[-1] *= 2.5
    robust = fit_law(POWER, x, y, starts=2, huber_delta=1e-3)
    squares = fit_law(POWER, x, y, starts=2, huber_delta=10.0)
    assert robust.params["b"] == pytest.approx(TRUTH["b"], rel=0.03)
    assert abs(squares.params["b"] - TRUTH["b"]) > 3 * abs(robust.params["b"] - TRUTH["b"])


def test_laws_with_a_random_guess_constant_need_it():
    x, y = power_data()
    with pytest.raises(AnalysisError, match=r"needs a positive constant 'random_guess'.*--random-guess"):
        fit_law(M4, x, y, starts=2)


def test_points_above_the_random_guess_are_warned_about():
    x, y = power_data()
    fit = fit_law(M4, x, y, starts=2, constants={"random_guess": float(np.median(y))})
    assert any("have y >= random_guess" in warning for warning in fit.warnings)


def test_start_grid_is_hoffmanns_4500_for_the_joint_law_and_lies_inside_the_bounds():
    grid = start_grid(CHINCHILLA)
    assert grid.shape == (4500, 5) and np.all(np.isfinite(grid))
    assert start_grid(CHINCHILLA, 2).shape == (32, 5)
    natural = CHINCHILLA.natural(grid)
    for param in CHINCHILLA.params:
        assert np.all((np.asarray(natural[param.name]) > param.low) & (np.asarray(natural[param.name]) < param.high))


def test_fit_predicts_with_its_parameters_in_data_units():
    x, y = power_data()
    fit = fit_law(POWER, x, y, starts=2)
    assert fit.params["a"] == pytest.approx(TRUTH["a"], rel=0.1)
    assert fit.params["b"] == pytest.approx(TRUTH["b"], rel=0.02)
    np.testing.assert_allclose(fit.predict(x), predict(POWER, fit.params, (x,)), rtol=1e-12)
    np.testing.assert_allclose(fit.predict(x), fit.params["a"] * x ** -fit.params["b"], rtol=1e-9)


def test_bootstrap_over_runs_draws_whole_runs():
    x, y = power_data()
    fit = fit_law(POWER, x, y, starts=2)
    runs = np.repeat(["r1", "r2", "r3"], 10)
    by_run = bootstrap(fit, 16, groups=runs)
    assert by_run.resampled == "runs" and len(by_run.samples["b"]) == 16
    by_row = bootstrap(fit, 16)
    assert not np.allclose(by_run.samples["b"], by_row.samples["b"])
    with pytest.raises(AnalysisError, match="at least 2 runs"):
        bootstrap(fit, 16, groups=np.repeat("r1", 30))
    with pytest.raises(AnalysisError, match="at least 2 resamples"):
        bootstrap(fit, 1)
