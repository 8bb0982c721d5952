"""Each law, fitted to data generated from it with known parameters and noise, recovers the parameters
within its bootstrap interval."""

import numpy as np
import pytest

from analysis.bootstrap import bootstrap
from analysis.fit import fit_law
from analysis.laws import LAWS, M4, get_law
from analysis.synthetic import sample_law

CHANCE = {"random_guess": 0.999}
COMPUTE = np.geomspace(1e12, 1e19, 40)
SIZES, SEEN = (grid.ravel() for grid in np.meshgrid(np.geomspace(1e5, 1e8, 7), np.geomspace(1e6, 1e9, 7)))
TRUTH = {
    "power": {"a": 50.0, "b": 0.12},
    "saturating": {"a": 30.0, "b": 0.15, "c": 0.12, "d": 1e14},
    "broken": {"a": 0.1, "b": 2.0, "c0": 0.02, "c1": 0.3, "d1": 1e15, "f1": 0.5},
    "m4": {"beta": 3e3, "c": -0.3, "alpha": 0.6, "e_inf": 0.1},
    "chinchilla": {"E": 0.1, "A": 20.0, "B": 12.0, "alpha": 0.34, "beta": 0.28},
    "rosenfeld": {"a": 300.0, "alpha": 0.4, "b": 200.0, "beta": 0.35, "c_inf": 0.2},
}
EXPONENTS = {"power": ["b"], "saturating": ["b"], "broken": ["c1"], "m4": ["c"], "chinchilla": ["alpha", "beta"],
             "rosenfeld": ["alpha", "beta"]}


def test_every_law_is_covered():
    assert set(TRUTH) == set(LAWS)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_fit_recovers_known_parameters_within_bootstrap_interval(name):
    law, truth = get_law(name), TRUTH[name]
    x = (COMPUTE,) if len(law.inputs) == 1 else (SIZES, SEEN)
    y = sample_law(law, truth, x, noise=0.02, seed=1, constants=CHANCE)
    fit = fit_law(law, x, y, constants=CHANCE, starts=3)
    assert fit.status == "converged" and not fit.warnings
    boot = bootstrap(fit, 32, seed=0)
    intervals = boot.params()
    for item, derived in boot.derived().items():  # e.g. the optimal-size exponent of the joint laws
        true_value = next(d.value for d in law.derived if d.name == item)(truth)
        assert derived.low <= true_value <= derived.high, (item, true_value, derived)
    for param, true_value in truth.items():
        interval = intervals[param]
        assert interval.low <= true_value <= interval.high, (param, true_value, interval)
        assert interval.low <= interval.value <= interval.high
        if param in EXPONENTS[name]:  # with 2% noise the exponents are pinned down tightly
            assert interval.high - interval.low < 0.5 * abs(true_value), (param, interval)


def test_m4_prediction_solves_its_implicit_equation():
    params = TRUTH["m4"]
    error = sample_law(M4, params, (COMPUTE,), noise=0.0, seed=0, constants=CHANCE)
    left = (error - params["e_inf"]) / (CHANCE["random_guess"] - error) ** params["alpha"]
    np.testing.assert_allclose(left, params["beta"] * COMPUTE ** params["c"], rtol=1e-9)
    assert np.all(np.diff(error) < 0) and np.all(error > params["e_inf"])


def test_rosenfeld_form_tends_to_random_guess_for_tiny_models_and_data():
    law, params = get_law("rosenfeld"), TRUTH["rosenfeld"]
    tiny = sample_law(law, params, (np.array([1.0]), np.array([1.0])), noise=0.0, seed=0, constants=CHANCE)
    huge = sample_law(law, params, (np.array([1e30]), np.array([1e30])), noise=0.0, seed=0, constants=CHANCE)
    assert tiny[0] == pytest.approx(CHANCE["random_guess"], rel=1e-4)
    c_inf = params["c_inf"]
    assert huge[0] == pytest.approx(CHANCE["random_guess"] * c_inf / np.sqrt(c_inf**2 + 1), rel=1e-6)


def test_every_law_names_its_source_and_parameters():
    for law in LAWS.values():
        assert law.__class__.__doc__ and law.source and law.formula
        assert len(set(law.names)) == len(law.params)
        for param in law.params:
            assert all(param.low < value < param.high for value in param.inside(np.array(param.starts)))
