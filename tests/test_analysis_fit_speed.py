"""The pruned fit (successive halving of the 4,500 starts) finds what the full grid finds, on data from
Hoffmann et al.'s published L(N, D) written out by hand."""

import jax
import numpy as np
import pytest

from analysis.fit import fit_law, objective, prepare, problem, start_grid
from analysis.laws import CHINCHILLA
from analysis.lbfgs import PRUNED, minimise

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022, eq. 10


def hoffmann_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28


def sizes(points: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return 10 ** rng.uniform(7, 10, points), 10 ** rng.uniform(9, 12, points)


def test_pruned_fit_of_exact_data_lands_on_hoffmanns_parameters():
    n, d = sizes(64)
    fit = fit_law(CHINCHILLA, (n, d), hoffmann_loss(n, d))
    assert fit.num_starts == 4500 and fit.status == "converged"
    assert fit.loss < 1e-12  # the known optimum: zero residuals
    for name, value in HOFFMANN.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-3), name


def test_pruned_fit_reaches_the_full_grids_best_loss_on_noisy_data():
    n, d = sizes(64)
    y = hoffmann_loss(n, d) * np.exp(0.01 * np.random.default_rng(1).standard_normal(64))
    pruned = fit_law(CHINCHILLA, (n, d), y)
    setup = prepare(CHINCHILLA, (n, d), y)
    starts = start_grid(CHINCHILLA)
    with jax.enable_x64(True):
        full = minimise(objective(CHINCHILLA), starts, np.broadcast_to(setup.weights, (len(starts), 64)),
                        problem(setup))
    assert not np.any(full.status == PRUNED)
    # both stop at a relative decrease below 1e-10 per step
    assert pruned.loss == pytest.approx(np.min(full.value[np.isfinite(full.value)]), rel=1e-8)
    assert pruned.params["alpha"] == pytest.approx(0.34, abs=0.05)
    assert pruned.params["beta"] == pytest.approx(0.28, abs=0.05)
