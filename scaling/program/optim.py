"""Optimizers (adamw, sgd + momentum) at unit learning rate, and learning-rate schedules.

The train step multiplies the optimizer's update by the schedule's value for the step, which the
host computes: the compiled program does not depend on the schedule or the run's length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warmup to `optim.lr`, then cosine or linear decay to 0, constant, wsd (constant then linear
    cooldown), or step (times `optim.step_factor` at each of `optim.step_boundaries`, fractions of the run)."""
    peak = optim.lr
    warmup = min(round(optim.warmup_fraction * num_steps), num_steps - 1)
    rest = num_steps - warmup
    warmup_schedule = optax.linear_schedule(0.0, peak, warmup) if warmup else optax.constant_schedule(peak)
    if optim.schedule == "cosine":
        after = optax.cosine_decay_schedule(peak, rest)
    elif optim.schedule == "linear":
        after = optax.linear_schedule(peak, 0.0, rest)
    elif optim.schedule == "constant":
        after = optax.constant_schedule(peak)
    elif optim.schedule == "step":
        boundaries = {
            max(1, round(fraction * num_steps) - warmup): optim.step_factor for fraction in optim.step_boundaries
        }
        after = optax.piecewise_constant_schedule(peak, boundaries)
    else:  # wsd
        cooldown = max(1, min(round(optim.cooldown_fraction * num_steps), rest))
        after = optax.join_schedules(
            [optax.constant_schedule(peak), optax.linear_schedule(peak, 0.0, cooldown)],
            [rest - cooldown],
        )
    return optax.join_schedules([warmup_schedule, after], [warmup])


def learning_rates(optim: ml_collections.ConfigDict, num_steps: int) -> np.ndarray:
    """The learning rate of every step of a `num_steps` run, float32 [num_steps]."""
    return np.asarray(jax.vmap(learning_rate_schedule(optim, num_steps))(jnp.arange(num_steps)), np.float32)


def cooldown_branch(trunk_rates: np.ndarray, branch_step: int, total_steps: int) -> np.ndarray:
    """The trunk's rates up to `branch_step`, then a linear decay from the trunk's rate there to 0 at `total_steps`."""
    start = trunk_rates[min(branch_step, len(trunk_rates) - 1)]
    decay = start * (1.0 - np.arange(total_steps - branch_step) / (total_steps - branch_step))
    return np.concatenate([trunk_rates[:branch_step], decay]).astype(np.float32)


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """The optax transformation at unit learning rate. Weight decay skips biases and norm scales (ndim < 2)."""

    def decay_mask(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)

    if optim.name == "adamw":
        tx = optax.adamw(1.0, b1=optim.momentum, b2=optim.beta2, weight_decay=optim.weight_decay, mask=decay_mask)
    else:  # sgd: L2 added to the gradient, Nesterov momentum, as in the classic ResNet recipe
        tx = optax.chain(
            optax.add_decayed_weights(optim.weight_decay, decay_mask),
            optax.sgd(1.0, momentum=optim.momentum, nesterov=True),
        )
    if optim.grad_clip_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), tx)
    return tx
