"""Each law's `predict` against the paper's formula written out by hand (tests/law_formulas.py), at values
worked out by hand and across the range; and each law, fitted to data generated from that hand formula with
known parameters and noise, recovers the parameters within its bootstrap interval."""

import numpy as np
import pytest
from law_formulas import FORMULAS, formula, noisy

from analysis.bootstrap import bootstrap
from analysis.fit import fit_law
from analysis.laws import LAWS, get_law, predict

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
# Values worked out with pencil and paper: (law, parameters, inputs, random_guess or None, the law's value there).
WORKED = [
    ("power", {"a": 2.0, "b": 0.5}, (4.0,), None, 1.0),  # 2/sqrt(4)
    ("power", {"a": 10.0, "b": 1.0}, (100.0,), None, 0.1),
    ("saturating", {"a": 3.0, "b": 1.0, "c": 0.5, "d": 1.0}, (2.0,), None, 1.5),  # 3/(2+1) + 0.5
    ("saturating", {"a": 2.0, "b": 0.5, "c": 0.1, "d": 7.0}, (9.0,), None, 0.6),  # 2/sqrt(16) + 0.1
    ("chinchilla", {"E": 1.0, "A": 8.0, "B": 9.0, "alpha": 1 / 3, "beta": 0.5}, (8.0, 9.0), None, 8.0),  # 1+4+3
    ("chinchilla", {"E": 1.0, "A": 8.0, "B": 9.0, "alpha": 1 / 3, "beta": 0.5}, (27.0, 4.0), None, 49 / 6),
    # e = 1/sqrt(16) + 0.75/81^(1/4) + 0.25 = 3/4; |e/(e - i)| = 0.75/1.25 = 0.6
    ("rosenfeld", {"a": 1.0, "alpha": 0.5, "b": 0.75, "beta": 0.25, "c_inf": 0.25}, (81.0, 16.0), 0.9, 0.54),
    # e = 1/4 + 0.5/sqrt(9) + 0.25 = 2/3: |e/(e - i)| = (2/3)/sqrt(4/9 + 1) = 2/sqrt(13)
    ("rosenfeld", {"a": 1.0, "alpha": 1.0, "b": 0.5, "beta": 0.5, "c_inf": 0.25}, (9.0, 4.0), 0.9,
     0.9 * 2 / np.sqrt(13)),
    ("broken", {"a": 0.1, "b": 2.0, "c0": 0.5, "c1": 1.0, "d1": 4.0, "f1": 1.0}, (16.0,), None, 0.2),  # .1+.5/5
    # 0.2 + (2/3)·(1 + (3/4)^2)^(-1/2) = 0.2 + (2/3)·(4/5)
    ("broken", {"a": 0.2, "b": 2.0, "c0": 1.0, "c1": 1.0, "d1": 4.0, "f1": 0.5}, (3.0,), None, 0.2 + 8 / 15),
    # (0.5 - 0.1)/(1 - 0.5)^2 = 1.6 = 6.4·2^-2
    ("m4", {"beta": 6.4, "c": -2.0, "alpha": 2.0, "e_inf": 0.1}, (2.0,), 1.0, 0.5),
    # alpha = 1: (E - 0.2)/(1 - E) = 1/2 gives E = 7/15
    ("m4", {"beta": 1.0, "c": -1.0, "alpha": 1.0, "e_inf": 0.2}, (2.0,), 1.0, 7 / 15),
    ("m4_learned", {"beta": 6.4, "c": -2.0, "alpha": 2.0, "e_inf": 0.1, "span": 0.9}, (2.0,), None, 0.5),
    ("m2", {"beta": 4.0, "c": -0.5, "e_inf": 0.1}, (16.0,), None, 1.1),  # 4/sqrt(16) + 0.1
    ("m3", {"beta": 2.0, "c": -1.0, "gamma": 0.25}, (4.0,), None, 1.0),  # 2·(1/4 + 1/4)
    ("m3", {"beta": 3.0, "c": -0.5, "gamma": 0.15}, (10.0,), None, 1.5),  # 3·sqrt(0.1 + 0.15)
]


def constants(random_guess: float | None) -> dict[str, float] | None:
    return None if random_guess is None else {"random_guess": random_guess}


def test_every_law_has_a_hand_formula_and_worked_values():
    assert set(FORMULAS) == set(LAWS)
    assert {item[0] for item in WORKED} == set(LAWS)
    assert set(TRUTH) <= set(LAWS)


@pytest.mark.parametrize("name, params, x, random_guess, value", WORKED, ids=[item[0] for item in WORKED])
def test_hand_formula_and_predict_give_the_worked_value(name, params, x, random_guess, value):
    inputs = tuple(np.array([item]) for item in x)
    assert formula(name, params, inputs, constants(random_guess))[0] == pytest.approx(value, rel=1e-12)
    assert predict(get_law(name), params, inputs, constants(random_guess))[0] == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_predict_matches_the_hand_formula_across_the_range(name):
    law, truth = get_law(name), TRUTH[name]
    x = (COMPUTE,) if len(law.inputs) == 1 else (SIZES, SEEN)
    np.testing.assert_allclose(predict(law, truth, x, CHANCE), formula(name, truth, x, CHANCE), rtol=1e-9)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_fit_recovers_known_parameters_within_bootstrap_interval(name):
    law, truth = get_law(name), TRUTH[name]
    x = (COMPUTE,) if len(law.inputs) == 1 else (SIZES, SEEN)
    y = noisy(formula(name, truth, x, CHANCE), noise=0.02, seed=1)
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


def test_rosenfeld_form_tends_to_random_guess_for_tiny_models_and_data():
    law, params = get_law("rosenfeld"), TRUTH["rosenfeld"]
    tiny = predict(law, params, (np.array([1.0]), np.array([1.0])), CHANCE)
    huge = predict(law, params, (np.array([1e30]), np.array([1e30])), CHANCE)
    assert tiny[0] == pytest.approx(CHANCE["random_guess"], rel=1e-4)
    c_inf = params["c_inf"]
    assert huge[0] == pytest.approx(CHANCE["random_guess"] * c_inf / np.sqrt(c_inf**2 + 1), rel=1e-6)


def test_every_law_names_its_source_and_parameters():
    for law in LAWS.values():
        assert law.__class__.__doc__ and law.source and law.formula
        assert len(set(law.names)) == len(law.params)
        for param in law.params:
            assert all(param.low < value < param.high for value in param.inside(np.array(param.starts)))
