"""Learning-rate schedules, every step of them, against the formulas written out by hand.

Conventions (scaling/program/optim.py): entry t of the array is the rate of step t + 1; a warmup of W steps
rises linearly from 0 (t = 0) to the peak, reached at t = W; a decay over the R steps after it falls from the
peak at its first step to 0 after its last (so the last step's rate is not 0).
"""

import math

import numpy as np
import pytest
from helpers import tiny_config

from scaling.config.defaults import base_config
from scaling.plan import plan_run
from scaling.program.optim import learning_rates

PEAK = 0.4
TOLERANCE = {"rtol": 1e-6, "atol": 1e-7}  # float32 rates: 1e-7 is 3 float32 ulps of the peak
STEPS = 20
WARMUP = 2  # warmup_fraction 0.1 of 20 steps
DECAY = STEPS - WARMUP


def _rates(schedule: str, **settings: object) -> np.ndarray:
    optim = base_config("resnet").optim
    optim.update({"lr": PEAK, "schedule": schedule, "warmup_fraction": 0.1, **settings})
    return learning_rates(optim, STEPS)


def _with_warmup(after: list[float]) -> list[float]:
    """The warmup's rates, then `after` (the DECAY rates from the peak on)."""
    return [PEAK * t / WARMUP for t in range(WARMUP)] + after


@pytest.mark.parametrize("schedule, after", [
    ("cosine", [PEAK * 0.5 * (1 + math.cos(math.pi * u / DECAY)) for u in range(DECAY)]),
    ("linear", [PEAK * (1 - u / DECAY) for u in range(DECAY)]),
    ("constant", [PEAK] * DECAY),
    # cooldown_fraction 0.2 of 20: constant, then the last 4 steps decay linearly: peak, 3/4, 1/2, 1/4 of it
    ("wsd", [PEAK] * (DECAY - 4) + [PEAK * (1 - k / 4) for k in range(4)]),
    # boundaries 1/3, 2/3, 8/9 of 20 steps: from t = 7 (6.67 rounded), 13 (13.3) and 18 (17.8), times 0.1 each
    ("step", [PEAK] * 5 + [PEAK * 0.1] * 6 + [PEAK * 0.01] * 5 + [PEAK * 0.001] * 2),
])
def test_each_schedule_matches_its_formula_at_every_step(schedule, after):
    rates = _rates(schedule, cooldown_fraction=0.2, step_boundaries=(1 / 3, 2 / 3, 8 / 9), step_factor=0.1)
    assert rates.shape == (STEPS,) and rates.dtype == np.float32
    np.testing.assert_allclose(rates, _with_warmup(after), **TOLERANCE)


def test_without_warmup_the_first_step_has_the_peak_rate():
    np.testing.assert_allclose(_rates("cosine", warmup_fraction=0.0),
                               [PEAK * 0.5 * (1 + math.cos(math.pi * t / STEPS)) for t in range(STEPS)], **TOLERANCE)


def test_cooldown_branch_keeps_the_trunks_rates_then_decays_linearly_to_zero(digits_data_dir):
    """A constant trunk of 20 steps; the branch leaves it at half (step 10) and lasts ceil(10 / (1 - 0.2)) = 13
    steps: the trunk's 10 rates, then the peak falling linearly over the last 3 steps."""
    config = tiny_config("resnet", digits_data_dir, "train.steps=20", f"optim.lr={PEAK}", "optim.schedule=constant",
                         "optim.warmup_fraction=0.1", "optim.cooldown_fraction=0.2", "train.branch_from=trunk",
                         "train.branch_fraction=0.5")
    plan = plan_run(config)
    assert (plan.trunk_steps, plan.branch_step, plan.num_steps) == (20, 10, 13)
    expected = [*_with_warmup([PEAK] * 8), PEAK, PEAK * 2 / 3, PEAK / 3]
    np.testing.assert_allclose(plan.learning_rates, expected, **TOLERANCE)
