"""Vectorised multi-start L-BFGS: thousands of starting points minimised at once with jax.vmap.

Every start advances by exactly one objective evaluation per tick (a backtracking line-search trial that is
accepted or shrunk), so a batch of starts never waits on a nested loop. The starts still running are packed
into blocks of a few fixed sizes: calls have few shapes (few compilations per objective and data size),
and finished starts cost nothing. Between rounds, the starts still running may be pruned to those with the
lowest objective (successive halving): starts that cannot win stop early. Call it inside `jax.enable_x64(True)`:
the state is float64.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Objective = Callable[[jax.Array, jax.Array, Any], jax.Array]  # (raw params, weights, data) -> scalar

MEMORY = 10  # curvature pairs kept
ARMIJO = 1e-4  # sufficient-decrease constant
FTOL = 1e-10  # a step lowering the objective by less than this (relative) converges
GTOL = 1e-9  # a gradient this small (largest component) counts as converged
BLOCKS = (32, 256)  # starts per call: the smallest that holds the running starts, else the last (fits in cache)
TICKS = 16  # ticks per call (fewer if the whole block finishes sooner)
RUNNING, CONVERGED, STALLED, OUT_OF_EVALUATIONS, PRUNED = 0, 1, 2, 3, 4
STATUS_NAMES = {RUNNING: "running", CONVERGED: "converged", STALLED: "stalled (line search failed)",
                OUT_OF_EVALUATIONS: "out of evaluations", PRUNED: "pruned (other starts were lower)"}


class _State(NamedTuple):
    x: np.ndarray
    f: np.ndarray
    g: np.ndarray
    direction: np.ndarray
    step: np.ndarray
    s_memory: np.ndarray  # newest first
    y_memory: np.ndarray
    count: np.ndarray  # pairs in memory
    evaluations: np.ndarray
    status: np.ndarray


@dataclasses.dataclass(frozen=True)
class Minima:
    """Where each start ended: raw parameters, objective value, status code and evaluations used."""

    x: np.ndarray
    value: np.ndarray
    status: np.ndarray
    evaluations: np.ndarray


def minimise(objective: Objective, starts: np.ndarray, weights: np.ndarray, data: Any, *, ftol: float = FTOL,
             max_evaluations: int = 2000, rounds: Sequence[tuple[int, int]] = ()) -> Minima:
    """Minimise `objective(x, weights[i], data)` from every row `starts[i]`. A start converges when a step
    lowers the objective by less than `ftol` (relative) or its gradient falls below GTOL; it stalls when its
    line search fails elsewhere, and stops after `max_evaluations`. Each (evaluations, kept) of `rounds`
    prunes: once the running starts have used that many evaluations, only the `kept` of them with the lowest
    objective go on, the rest stop as PRUNED where they are. Rounds compare rows with each other, so give
    them only where every row minimises the same function (the same weights)."""
    starts = np.asarray(starts, dtype=np.float64)
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), (len(starts), np.shape(weights)[-1]))
    state = _initial_state(starts)
    running = np.arange(len(starts))
    for evaluations, kept in rounds:
        running = _run(objective, state, running, weights, data, ftol, max_evaluations, evaluations)
        if running.size > kept:
            order = np.argsort(np.where(np.isnan(state.f[running]), np.inf, state.f[running]), kind="stable")
            state.status[running[order[kept:]]] = PRUNED
            running = np.sort(running[order[:kept]])
    _run(objective, state, running, weights, data, ftol, max_evaluations, max_evaluations)
    return Minima(x=state.x, value=state.f, status=state.status, evaluations=state.evaluations)


def _run(objective: Objective, state: _State, running: np.ndarray, weights: np.ndarray, data: Any, ftol: float,
         max_evaluations: int, until: int) -> np.ndarray:
    """Advance the `running` starts of `state` (in place) until they finish or have used `until` evaluations
    (running starts have all used the same number: one per tick); return those still running."""
    while running.size and state.evaluations[running[0]] < until:
        ticks = min(TICKS, until - int(state.evaluations[running[0]]))
        size = next((size for size in BLOCKS if size >= running.size), BLOCKS[-1])
        for block in np.array_split(running, -(-running.size // size)):
            rows = np.concatenate([block, np.full(size - block.size, block[0])])
            batch = _State(*(leaf[rows] for leaf in state))
            batch = batch._replace(status=np.where(np.arange(size) < block.size, batch.status, STALLED))
            advanced = _advance(objective, batch, weights[rows], data, ftol, max_evaluations, ticks)
            for leaf, new in zip(state, advanced):
                leaf[block] = np.asarray(new)[: block.size]
        running = running[state.status[running] == RUNNING]
    return running


def _initial_state(starts: np.ndarray) -> _State:
    """Starts whose first tick evaluates them (step 0 along direction 0, always accepted if finite)."""
    batch, dim = starts.shape
    return _State(
        x=starts.copy(), f=np.full(batch, np.inf), g=np.zeros((batch, dim)), direction=np.zeros((batch, dim)),
        step=np.zeros(batch), s_memory=np.zeros((batch, MEMORY, dim)), y_memory=np.zeros((batch, MEMORY, dim)),
        count=np.zeros(batch, np.int32), evaluations=np.zeros(batch, np.int32),
        status=np.full(batch, RUNNING, np.int32),
    )


@partial(jax.jit, static_argnames=("objective",))
def _advance(objective: Objective, state: _State, weights: jax.Array, data: Any, ftol: float,
             max_evaluations: int, ticks: int) -> _State:
    """Up to `ticks` ticks of every start; returns early once no start is running."""

    def one_start(start: _State, start_weights: jax.Array) -> _State:
        value_and_grad = jax.value_and_grad(lambda x: objective(x, start_weights, data))
        return _tick(start, value_and_grad, ftol, max_evaluations)

    def running(carry: tuple[jax.Array, _State]) -> jax.Array:
        done, batch = carry
        return (done < ticks) & jnp.any(batch.status == RUNNING)

    def tick(carry: tuple[jax.Array, _State]) -> tuple[jax.Array, _State]:
        done, batch = carry
        return done + 1, jax.vmap(one_start)(batch, weights)

    return jax.lax.while_loop(running, tick, (jnp.asarray(0), state))[1]


def _tick(state: _State, value_and_grad: Callable, ftol: float, max_evaluations: int) -> _State:
    """One evaluation for one start: try x + step·direction; accept it (Armijo) or shrink the step."""
    trial = state.x + state.step * state.direction
    f_trial, g_trial = value_and_grad(trial)
    slope = jnp.dot(state.g, state.direction)
    finite = jnp.isfinite(f_trial) & jnp.all(jnp.isfinite(g_trial))
    accept = finite & (f_trial <= state.f + ARMIJO * state.step * slope)

    # accepted: remember the curvature pair if it is positive, test convergence, take a new direction
    s, y = trial - state.x, g_trial - state.g
    remember = jnp.dot(s, y) > 1e-12 * jnp.sqrt(jnp.dot(s, s) * jnp.dot(y, y))
    s_memory = jnp.where(remember, jnp.roll(state.s_memory, 1, axis=0).at[0].set(s), state.s_memory)
    y_memory = jnp.where(remember, jnp.roll(state.y_memory, 1, axis=0).at[0].set(y), state.y_memory)
    count = jnp.where(remember, jnp.minimum(state.count + 1, MEMORY), state.count)
    direction = _lbfgs_direction(g_trial, s_memory, y_memory, count)
    descent = jnp.dot(direction, g_trial) < 0
    direction, count = jnp.where(descent, direction, -g_trial), jnp.where(descent, count, 0)
    scale = jnp.maximum(jnp.maximum(jnp.abs(state.f), jnp.abs(f_trial)), 1e-300)
    converged = ((state.f - f_trial) / scale <= ftol) | (jnp.max(jnp.abs(g_trial)) <= GTOL)
    next_step = jnp.where(count > 0, 1.0, _first_step(g_trial))

    # rejected: shrink the step by quadratic interpolation, to between 0.1 and 0.5 of itself
    curvature = f_trial - state.f - slope * state.step
    quadratic = -slope * state.step**2 / (2.0 * jnp.where(curvature > 0, curvature, 1.0))
    shrunk = jnp.where(finite & (curvature > 0), jnp.clip(quadratic, 0.1 * state.step, 0.5 * state.step),
                       0.1 * state.step)
    too_small = shrunk * jnp.max(jnp.abs(state.direction)) <= 1e-14 * (1.0 + jnp.max(jnp.abs(state.x)))
    restart = too_small & (state.count > 0)  # L-BFGS direction failed: fall back to steepest descent

    evaluations = state.evaluations + 1
    stuck = too_small & ~restart
    flat = jnp.isfinite(state.f) & (jnp.max(jnp.abs(state.g)) <= GTOL)  # nothing left to gain
    status = jnp.where(accept, jnp.where(converged, CONVERGED, RUNNING),
                       jnp.where(stuck, jnp.where(flat, CONVERGED, STALLED), RUNNING))
    status = jnp.where((status == RUNNING) & (evaluations >= max_evaluations), OUT_OF_EVALUATIONS, status)
    updated = _State(
        x=jnp.where(accept, trial, state.x),
        f=jnp.where(accept, f_trial, state.f),
        g=jnp.where(accept, g_trial, state.g),
        direction=jnp.where(accept, direction, jnp.where(restart, -state.g, state.direction)),
        step=jnp.where(accept, next_step, jnp.where(restart, _first_step(state.g), shrunk)),
        s_memory=jnp.where(accept, s_memory, state.s_memory),
        y_memory=jnp.where(accept, y_memory, state.y_memory),
        count=jnp.where(accept, count, jnp.where(restart, 0, state.count)),
        evaluations=evaluations,
        status=status.astype(state.status.dtype),
    )
    finished = state.status != RUNNING
    return jax.tree.map(lambda old, new: jnp.where(finished, old, new), state, updated)


def _first_step(g: jax.Array) -> jax.Array:
    """Step length along -g before any curvature is known: at most a unit move."""
    return jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.sum(jnp.abs(g)), 1e-300))


def _lbfgs_direction(g: jax.Array, s_memory: jax.Array, y_memory: jax.Array, count: jax.Array) -> jax.Array:
    """-H·g for the L-BFGS inverse Hessian H of the stored pairs (two-loop recursion)."""
    valid = jnp.arange(MEMORY) < count
    sy = jnp.sum(s_memory * y_memory, axis=1)
    rho = jnp.where(valid, 1.0 / jnp.where(valid, sy, 1.0), 0.0)

    def newest_to_oldest(q: jax.Array, i: jax.Array) -> tuple[jax.Array, jax.Array]:
        alpha = rho[i] * jnp.dot(s_memory[i], q)
        return q - alpha * y_memory[i], alpha

    q, alphas = jax.lax.scan(newest_to_oldest, g, jnp.arange(MEMORY))
    yy = jnp.dot(y_memory[0], y_memory[0])
    gamma = jnp.where(count > 0, sy[0] / jnp.where(count > 0, yy, 1.0), 1.0)

    def oldest_to_newest(r: jax.Array, i: jax.Array) -> tuple[jax.Array, None]:
        beta = rho[i] * jnp.dot(y_memory[i], r)
        return r + s_memory[i] * (alphas[i] - beta), None

    r, _ = jax.lax.scan(oldest_to_newest, gamma * q, jnp.arange(MEMORY - 1, -1, -1))
    return -r
