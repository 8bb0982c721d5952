"""`scaling bench pack`'s measure: N same-shape runs trained packed in one vmapped program against the same runs
trained one after another, end to end and in steady training throughput."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import ml_collections
import numpy as np

from scaling.config.loading import load_config
from scaling.workdir.tracking import read_metrics


@dataclasses.dataclass(frozen=True)
class PackBench:
    """Wall seconds and steady examples/s of both ways of training the same runs."""

    members: int
    sequential_seconds: float  # end to end: every run's data, compile, steps, evaluation and checkpoints
    packed_seconds: float
    sequential_speed: float  # examples/s of one run while training, averaged over the runs
    packed_speed: float  # examples/s of the whole pack while training

    @property
    def wall_ratio(self) -> float:
        """Sequential over packed wall time: how many times faster the pack finished."""
        return self.sequential_seconds / self.packed_seconds

    @property
    def speed_ratio(self) -> float:
        """Packed over sequential training throughput."""
        return self.packed_speed / self.sequential_speed


def pack_configs(config_arg: str, members: int, steps: int, overrides: list[str]) -> list[ml_collections.ConfigDict]:
    """`members` configs of `config_arg` with seeds and data seeds 0..members-1, each training `steps` steps
    (logging 5 times, evaluating at the end, no wandb), then `overrides`."""
    from scaling.tools.loop_bench import bench_settings

    settings = [*bench_settings(steps), f"train.log_every_steps={max(1, steps // 5)}", *overrides]
    return [load_config(config_arg, [*settings, f"seed={i}", f"data.seed={i}"]) for i in range(members)]


def bench_pack(configs: list[ml_collections.ConfigDict]) -> PackBench:
    """Train `configs` one after another, then packed (fresh workdirs); time both."""
    from scaling.tools.loop_bench import check_completed
    from scaling.train import train_and_evaluate, train_packed

    members = len(configs)
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as folder:
        root = Path(folder)
        start = time.perf_counter()
        for index, config in enumerate(configs):
            check_completed([train_and_evaluate(config, root / f"alone{index}")])
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        check_completed(train_packed(configs, [root / f"packed{index}" for index in range(members)]))
        packed = time.perf_counter() - start
        alone_speed = sum(_steady_speed(root / f"alone{i}") for i in range(members)) / members
        packed_speed = sum(_steady_speed(root / f"packed{i}") for i in range(members))
    return PackBench(members, sequential, packed, alone_speed, packed_speed)


def format_pack_bench(result: PackBench, config_arg: str, config: ml_collections.ConfigDict) -> str:
    """What was run, both ways' times and speeds, and their ratios."""
    return "\n".join([
        f"{result.members} models x {config.train.steps} steps of {config.train.batch_size} examples, {config_arg}",
        f"one after another: {result.sequential_seconds:7.1f} s end to end, "
        f"{result.sequential_speed:10,.0f} examples/s while training",
        f"packed (vmap)    : {result.packed_seconds:7.1f} s end to end, "
        f"{result.packed_speed:10,.0f} examples/s while training",
        f"ratio packed/sequential: {result.wall_ratio:.2f}x end to end, {result.speed_ratio:.2f}x training throughput",
    ])


def _steady_speed(workdir: Path) -> float:
    """Median examples/s of a run's logging windows after the first (which includes warm-up)."""
    speeds = [line["examples_per_second"] for line in read_metrics(workdir) if line["kind"] == "train"]
    return float(np.median(speeds[1:] or speeds))
