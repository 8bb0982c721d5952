"""The benchmark compares like with like: all three ways reach the same best loss from the same starts."""

import pytest

from analysis.bench import benchmark_fit_starts, format_bench


def test_vectorised_optax_and_scipy_loop_reach_the_same_best_loss():
    result = benchmark_fit_starts(points=40, per_parameter=2, scipy_every=4, optax_every=4)
    assert result.starts == 32 and result.points == 40
    assert result.scipy_starts == result.optax_starts == 8
    assert result.vectorised_loss == pytest.approx(result.scipy_loss, rel=1e-6)
    assert result.optax_loss == pytest.approx(result.scipy_loss, rel=1e-6)
    assert result.optax_seconds_all == pytest.approx(4 * result.optax_seconds)
    text = format_bench(result)
    assert "32 starting points" in text and "optax.lbfgs" in text and "x scipy" in text
