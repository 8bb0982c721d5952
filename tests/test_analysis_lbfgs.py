"""The vectorised multi-start L-BFGS: reaches known minima from every start, keeps each start's own data,
and reports why a start stopped."""

import jax
import jax.numpy as jnp
import numpy as np

from analysis.lbfgs import CONVERGED, OUT_OF_EVALUATIONS, PRUNED, STALLED, minimise


def rosenbrock(x, weights, data):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def weighted_mean_target(x, weights, targets):
    """Minimised at x = (weighted mean of targets, -1)."""
    return jnp.sum(weights * (x[0] - targets) ** 2) + (x[1] + 1.0) ** 2


def test_rosenbrock_from_300_starts_all_reach_the_minimum():
    starts = np.random.default_rng(0).uniform(-2.0, 2.0, size=(300, 2))
    with jax.enable_x64(True):
        minima = minimise(rosenbrock, starts, np.ones((300, 1)), None)
    assert np.all(minima.status == CONVERGED)
    np.testing.assert_allclose(minima.x, np.ones((300, 2)), atol=1e-5)
    assert np.all(minima.value < 1e-10)
    assert minima.evaluations.min() < minima.evaluations.max()  # starts finished at different times


def test_every_start_keeps_its_own_weights_through_the_packing():
    rng = np.random.default_rng(1)
    targets = np.arange(5.0)
    weights = rng.uniform(0.1, 2.0, size=(70, 5))
    starts = rng.normal(0.0, 10.0 ** rng.uniform(0, 3, size=(70, 1)), size=(70, 2))
    with jax.enable_x64(True):
        minima = minimise(weighted_mean_target, starts, weights, jnp.asarray(targets))
    # stopping at a relative decrease below 1e-10 of a loss of order 1 leaves x within about 1e-5
    np.testing.assert_allclose(minima.x[:, 0], weights @ targets / weights.sum(axis=1), atol=1e-5)
    np.testing.assert_allclose(minima.x[:, 1], -1.0, atol=1e-5)


def test_a_start_with_no_finite_value_stalls_and_a_short_budget_runs_out():
    with jax.enable_x64(True):
        nowhere = minimise(lambda x, w, d: jnp.log(-jnp.sum(x**2) - 1.0), np.ones((3, 2)), np.ones((3, 1)), None)
        short = minimise(rosenbrock, np.array([[-1.5, 2.0]]), np.ones((1, 1)), None, max_evaluations=5)
    assert np.all(nowhere.status == STALLED) and np.all(np.isinf(nowhere.value))
    assert short.status[0] == OUT_OF_EVALUATIONS and short.evaluations[0] == 5


def test_a_round_keeps_the_lowest_starts_and_stops_the_rest_where_they_are():
    starts = np.random.default_rng(2).uniform(-3.0, 3.0, size=(40, 2))
    with jax.enable_x64(True):
        minima = minimise(weighted_mean_target, starts, np.ones((40, 5)), jnp.arange(5.0), rounds=[(1, 12)])
    # after one evaluation each start has only its value at the start: the 12 lowest there go on
    at_start = np.sum((starts[:, :1] - np.arange(5.0)) ** 2, axis=1) + (starts[:, 1] + 1.0) ** 2
    kept = np.argsort(at_start)[:12]
    assert set(np.flatnonzero(minima.status != PRUNED)) == set(kept)
    assert np.all(minima.status[kept] == CONVERGED)
    np.testing.assert_allclose(minima.x[kept], np.tile([2.0, -1.0], (12, 1)), atol=1e-5)
    pruned = minima.status == PRUNED
    np.testing.assert_array_equal(minima.x[pruned], starts[pruned])
    assert np.all(minima.evaluations[pruned] == 1)
