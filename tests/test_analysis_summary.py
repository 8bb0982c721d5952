"""The loss a fit reports: the fitter minimises the mean Huber loss of the log residuals, while Hoffmann et al.
2022 (App. D) and Epoch's replication report the sum; `fit` and the report print both, each under its name."""

import numpy as np
import pandas as pd
import pytest
from law_formulas import noisy, power

from analysis.laws import POWER
from analysis.request import FitRequest, fit_request
from analysis.summary import format_law, law_record

X = np.geomspace(1e12, 1e18, 30)
DELTA = 1e-3


def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """Huber 1964: quadratic within delta, linear beyond."""
    size = np.abs(residual)
    return np.where(size <= delta, 0.5 * residual**2, delta * (size - 0.5 * delta))


def test_the_mean_and_the_sum_of_the_huber_loss_are_labelled_and_match_a_hand_computation():
    frame = pd.DataFrame({"compute": X, "top1_error": noisy(power(X, 5.0, 0.1), 0.002, seed=1)})
    fitted = fit_request(FitRequest(law=POWER, x=("compute",), y="top1_error", points="all", huber_delta=DELTA,
                                    starts=2), frame, resamples=0)
    record = law_record(fitted)
    params = {name: estimate["value"] for name, estimate in record["params"].items()}
    residual = np.log(power(X, **params)) - np.log(frame["top1_error"].to_numpy())
    assert (np.abs(residual) > DELTA).any() and (np.abs(residual) < DELTA).any()  # both branches of the loss
    by_hand = float(np.sum(huber(residual, DELTA)))
    assert record["loss_sum"] == pytest.approx(by_hand, rel=1e-5)
    assert record["loss"] == pytest.approx(by_hand / X.size, rel=1e-5)
    assert (f"mean Huber loss {by_hand / X.size:.3g}, Huber loss (sum, as Hoffmann et al.) {by_hand:.3g} "
            f"(delta {DELTA:g})") in format_law(record)
