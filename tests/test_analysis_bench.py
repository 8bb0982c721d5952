"""The benchmark compares like with like: both ways reach the same best loss from the same starts."""

import pytest

from analysis.bench import benchmark_fit_starts, format_bench


def test_vectorised_and_scipy_loop_reach_the_same_best_loss():
    result = benchmark_fit_starts(points=40, per_parameter=2)
    assert result.starts == 32 and result.points == 40
    assert result.vectorised_loss == pytest.approx(result.scipy_loss, rel=1e-6)
    text = format_bench(result)
    assert "32 starting points" in text and "speed-up" in text
