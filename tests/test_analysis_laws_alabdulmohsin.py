"""Alabdulmohsin et al. 2022's estimators M2, M3 and M4 with a learned random-guess level: each law's `predict`
against a hand-written formula (the forms of google-research/revisiting_neural_scaling_laws/methods/m2.py, m3.py,
m4.py), and fits of data generated from those formulas recover the parameters."""

import numpy as np
import pytest
from law_formulas import m2, m3, m4_learned

from analysis.fit import fit_law
from analysis.laws import M2, M3, M4, M4_LEARNED, predict

X = np.geomspace(1e3, 1e8, 30)  # e.g. examples seen, as in the paper's benchmark
M2_TRUTH = {"beta": 5.0, "c": -0.35, "e_inf": 0.08}
M3_TRUTH = {"beta": 2.0, "c": -0.4, "gamma": 1e-6}
M4_TRUTH = {"beta": 54.0, "c": -0.5, "alpha": 0.6, "e_inf": 0.05, "span": 0.85}  # eps0 = 0.9


@pytest.mark.parametrize("law, truth, by_hand", [
    (M2, M2_TRUTH, m2), (M3, M3_TRUTH, m3), (M4_LEARNED, M4_TRUTH, m4_learned)])
def test_predict_matches_the_hand_written_formula(law, truth, by_hand):
    at = np.array([1e3, 3.7e4, 1e6, 2e9])
    np.testing.assert_allclose(predict(law, truth, (at,)), by_hand(at, **truth), rtol=1e-9)


def test_m3_levels_off_at_beta_gamma_to_the_minus_c():
    (e_inf,) = (item for item in M3.derived if item.name == "e_inf")
    assert e_inf.value(M3_TRUTH) == pytest.approx(2.0 * 1e-6**0.4)
    assert predict(M3, M3_TRUTH, (np.array([1e15]),))[0] == pytest.approx(2.0 * 1e-6**0.4, rel=1e-6)


def test_m4_learned_is_m4_with_its_random_guess_level_free():
    fixed = {name: M4_TRUTH[name] for name in ("beta", "c", "alpha", "e_inf")}
    np.testing.assert_allclose(predict(M4_LEARNED, M4_TRUTH, (X,)),
                               predict(M4, fixed, (X,), {"random_guess": 0.9}), rtol=1e-12)
    assert M4_LEARNED.constants == () and M4.constants == ("random_guess",)


@pytest.mark.parametrize("law, truth, by_hand, starts", [
    (M2, M2_TRUTH, m2, 2), (M3, M3_TRUTH, m3, 2), (M4_LEARNED, M4_TRUTH, m4_learned, 2)])
def test_fitting_hand_generated_data_recovers_the_parameters(law, truth, by_hand, starts):
    # noise-free data: the fit must invert the formula itself, so a wrong exponent or unit conversion fails here
    fit = fit_law(law, X, by_hand(X, **truth), starts=starts)
    assert fit.status == "converged" and not fit.warnings
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=2e-2), name
