"""The bare jitted train step of a config on this machine's devices, with the batch already in memory:
the images per second the model itself consumes (the reference of the input and loop benchmarks)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from scaling.plan import RunPlan, plan_run
from scaling.program import sharding
from scaling.program.build import Program, build_program
from scaling.program.steps import StepInputs
from scaling.runtime.dispatch import DispatchThrottle


@dataclasses.dataclass
class BareStep:
    """A config's plan and program, the time its training step took to compile for one fixed random batch on the
    devices, and a timer of that compiled step."""

    plan: RunPlan
    program: Program
    compile_seconds: float  # wall time of lowering and compiling the step
    seconds: Callable[[int], float]  # steps -> wall seconds of that many steps on the batch

    @property
    def batch(self) -> int:
        """The global batch size."""
        return self.plan.batch_size


def bare_step_timer(config: ml_collections.ConfigDict) -> BareStep:
    """The training loop's step (a pack of one) compiled for one fixed random batch already on the devices, with
    a function timing `steps` calls of it, in seconds. Compiles (timed) and warms up once."""
    plan = plan_run(config)
    facts, batch = plan.facts, plan.batch_size
    program = build_program(config, plan.model)
    state = program.stack(program.initial_state(np.int32(config.seed)))
    rng = np.random.default_rng(0)
    channels = facts.image_shape[-1]
    norm = jax.device_put({"mean": np.full((1, channels), 0.5, np.float32),
                           "std": np.full((1, channels), 0.25, np.float32)}, sharding.replicated(program.mesh))
    inputs = StepInputs.place(
        program.mesh, rng.integers(0, 256, (1, batch, *facts.image_shape), dtype=np.uint8),
        rng.integers(0, facts.num_classes, (1, batch)).astype(np.int32), norm,
        np.full(1, config.optim.lr, np.float32), np.array([[config.data.seed, 0]], np.int32),
    )
    start = time.perf_counter()
    step = program.train_step.lower(state, inputs).compile()
    compile_seconds = time.perf_counter() - start
    state, metrics = step(state, inputs)
    jax.block_until_ready(metrics)

    def seconds(steps: int) -> float:
        nonlocal state, metrics
        start, throttle = time.perf_counter(), DispatchThrottle()  # queued as deep as the training loop's
        for _ in range(steps):
            state, metrics = step(state, inputs)
            throttle.dispatched(metrics)
        jax.block_until_ready(metrics)
        return time.perf_counter() - start

    return BareStep(plan, program, compile_seconds, seconds)


def train_step_images_per_second(config: ml_collections.ConfigDict, steps: int) -> float:
    """Images per second of `steps` calls of the training loop's compiled step on one fixed random batch
    (after a warm-up step)."""
    timer = bare_step_timer(config)
    return steps * timer.batch / timer.seconds(steps)
