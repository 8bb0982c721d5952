"""`scaling bench loop`: steps per second of the full training loop (data, logging, checkpoints) against
the bare compiled step with its batch already on the devices, as a ratio.

Each round trains the config from scratch in a fresh workdir with `train_and_evaluate` (evaluation only
at the end, wandb off), between two timings of bare steps, as many in all as the loop's timed windows.
The loop's rate is its steps over the wall time of its logging windows after the first one: compilation,
the warm-up window, the final evaluation and the final checkpoint are left out; periodic checkpoints and
every log are in. The machine's load drifts, so the medians over the rounds are compared.
"""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
from pathlib import Path

import ml_collections
import numpy as np

from analysis.table.contract import Status
from scaling.errors import ConfigError
from scaling.tools.step_bench import bare_step_timer
from scaling.workdir.records import RunResult
from scaling.workdir.tracking import read_metrics


@dataclasses.dataclass
class LoopBench:
    """Steps per second of the training loop and of the bare step, one value per round."""

    loop: list[float]
    bare: list[float]
    devices: int = 0  # of the mesh

    @property
    def loop_rate(self) -> float:
        """Median steps/s of the full loop over the rounds."""
        return float(np.median(self.loop))

    @property
    def bare_rate(self) -> float:
        """Median steps/s of the bare step over the rounds."""
        return float(np.median(self.bare))

    @property
    def ratio(self) -> float:
        """Loop over bare step: 1.0 means the loop adds nothing to the step."""
        return self.loop_rate / self.bare_rate


def bench_settings(steps: int) -> list[str]:
    """Overrides the training benchmarks apply before the user's: `steps` steps, evaluation only at the end,
    no wandb."""
    return ["train.epochs=None", f"train.steps={steps}", "train.eval_every_steps=0", "wandb.mode=disabled"]


def bench_loop(config: ml_collections.ConfigDict, rounds: int) -> LoopBench:
    """`rounds` full training runs of `config` (fresh workdirs), each between two timings of half as many bare
    steps as the run's timed windows hold (so a drift in the machine's load hits both alike)."""
    log_every, steps = config.train.log_every_steps, config.train.steps
    if rounds < 1:
        raise ConfigError(f"bench loop needs at least one round; got --rounds {rounds}")
    if steps is None or steps < 2 * log_every:
        raise ConfigError(
            f"bench loop times the logging windows after the first, so it needs train.steps >= "
            f"2 * train.log_every_steps = {2 * log_every}; got {steps}: raise --steps or lower train.log_every_steps"
        )
    timer = bare_step_timer(config)
    result = LoopBench([], [])
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
        for index in range(rounds):
            timed = steps - log_every  # the steps of the loop's logging windows after the first
            before = timer.seconds(timed // 2)
            loop_steps, loop_seconds, result.devices = _loop_windows(config, Path(folder) / f"round{index}",
                                                                     timer.batch)
            result.loop.append(loop_steps / loop_seconds)
            result.bare.append(timed / (before + timer.seconds(timed - timed // 2)))
    return result


def check_completed(outcomes: list[RunResult]) -> None:
    """Raise unless every benchmarked run completed (a diverged or preempted run's speed means nothing)."""
    for outcome in outcomes:
        if outcome.status != Status.COMPLETED:
            raise RuntimeError(f"the benchmarked run ended {outcome.status}: {outcome.error}")


def _loop_windows(config: ml_collections.ConfigDict, workdir: Path, batch: int) -> tuple[int, float, int]:
    """Train `config` in `workdir`; the steps and wall seconds of its logging windows after the first, and
    the number of devices it trained on."""
    from scaling.train import train_and_evaluate

    outcome = train_and_evaluate(config, workdir)
    check_completed([outcome])
    windows = [line for line in read_metrics(workdir) if line["kind"] == "train"]
    seconds = sum((line["step"] - before["step"]) * batch / line["examples_per_second"]
                  for before, line in itertools.pairwise(windows))
    return windows[-1]["step"] - windows[0]["step"], seconds, outcome.num_devices


def format_loop_bench(result: LoopBench, config_arg: str, config: ml_collections.ConfigDict) -> str:
    """What was run, the two rates and their ratio, one line each."""
    train = config.train
    return "\n".join([
        f"{config_arg}: {config.data.name}, batch {train.batch_size}, {result.devices} device(s); {len(result.loop)} "
        f"round(s) of {train.steps} steps, log every {train.log_every_steps}, checkpoint every "
        f"{train.checkpoint_every_steps}; timed after the first log",
        f"training loop (data, logs, checkpoints): {result.loop_rate:9.2f} steps/s",
        f"bare compiled step (batch in memory)   : {result.bare_rate:9.2f} steps/s",
        f"ratio loop/bare: {result.ratio:.3f} (of the medians; each round's: "
        f"{', '.join(f'{loop / bare:.3f}' for loop, bare in zip(result.loop, result.bare))})",
    ])
