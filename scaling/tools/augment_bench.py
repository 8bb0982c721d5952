"""`scaling bench augment`: images per second of the bare train step without augmentation, with crop and flip,
and with crop, flip and RandAugment, and of the augmentation alone (each on one fixed random batch on the devices).

Every setting is compiled first; the timings then alternate between the settings, round after round, and the
medians over the rounds are compared (so a drift in the machine's load hits every setting alike)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import numpy as np

from scaling.config.loading import load_config
from scaling.data.augment import augment_images
from scaling.data.pipeline import device_augment
from scaling.errors import ConfigError

if TYPE_CHECKING:
    from scaling.tools.step_bench import BareStep


@dataclasses.dataclass
class AugmentBench:
    """Images/s of each setting, one value per round: of the train step, and of the augmentation alone (None
    where the setting has none)."""

    names: list[str]
    step: list[list[float]]
    augment: list[list[float] | None]
    image_shape: tuple[int, ...]  # of the dataset's images
    batch: int
    devices: str  # of the mesh, e.g. "1 gpu"

    def median(self, index: int, of: str = "step") -> float | None:
        """Median images/s of setting `index` over the rounds, of the "step" or of the "augment"ation alone."""
        rates = getattr(self, of)[index]
        return None if rates is None else float(np.median(rates))


def add_augment_command(commands: argparse._SubParsersAction) -> None:
    """Register `bench augment`."""
    augment = commands.add_parser(
        "augment", help="images/s of the train step without augmentation, with crop + flip, and with RandAugment",
        description="Times the bare compiled train step of the config on one fixed random batch (as `bench data`'s "
        "model row) with data.augment off, with inception_crop + flip, and with inception_crop + flip + "
        "RandAugment (--ops per image at --magnitude), and the on-device augmentation alone at each setting; "
        "the settings alternate over --rounds and the medians are printed. Extra --config.KEY=VALUE arguments "
        "override the config (before the augmentation settings).",
    )
    augment.add_argument("--config", default="configs/resnet.py:width=16,depth=10", help="config file and argument")
    augment.add_argument("--steps", type=int, default=20, help="steps timed per setting and round (default 20)")
    augment.add_argument("--rounds", type=int, default=3, help="rounds over the settings (default 3)")
    augment.add_argument("--ops", type=int, default=2, help="RandAugment ops per image (default 2)")
    augment.add_argument("--magnitude", type=float, default=9.0, help="RandAugment magnitude (default 9)")
    augment.set_defaults(handler=_bench_augment, takes_overrides=True)


def settings(ops: int, magnitude: float) -> list[tuple[str, list[str]]]:
    """The compared augmentation settings, as names and config overrides."""
    off = ["data.augment.inception_crop=False", "data.augment.flip=False", "data.augment.randaugment_ops=0",
           "data.augment.mixup_alpha=0.0"]
    crop_flip = [*off, "data.augment.inception_crop=True", "data.augment.flip=True"]
    return [
        ("no augmentation", off),
        ("crop + flip", crop_flip),
        (f"crop + flip + RandAugment N={ops} M={magnitude:g}",
         [*crop_flip, f"data.augment.randaugment_ops={ops}", f"data.augment.randaugment_magnitude={magnitude}"]),
    ]


def bench_augment(config_arg: str, overrides: list[str], steps: int, rounds: int, ops: int,
                  magnitude: float) -> AugmentBench:
    """Compile the step (and the augmentation alone) of every setting of `settings`, then time `steps` calls of
    each, setting after setting, `rounds` times."""
    from scaling.tools.step_bench import bare_step_timer

    names, timers = [], []
    for name, augment_overrides in settings(ops, magnitude):
        timer = bare_step_timer(load_config(config_arg, ["wandb.mode=disabled", *overrides, *augment_overrides]))
        names.append(name)
        timers.append((timer.seconds, augment_timer(timer)))
    step_rates: list[list[float]] = [[] for _ in names]
    augment_rates: list[list[float] | None] = [None if alone is None else [] for _, alone in timers]
    for _ in range(rounds):
        for index, (step_seconds, alone) in enumerate(timers):
            step_rates[index].append(steps * timer.batch / step_seconds(steps))
            if alone is not None:
                augment_rates[index].append(steps * timer.batch / alone(steps))
    mesh_devices = timer.program.mesh.devices
    return AugmentBench(names, step_rates, augment_rates, timer.plan.facts.image_shape, timer.batch,
                        f"{mesh_devices.size} {mesh_devices.flat[0].platform}")


def augment_timer(timer: BareStep) -> Callable[[int], float] | None:
    """A function timing `steps` calls of the step's on-device augmentation alone (jitted, on a random batch of
    the step's shape split over its mesh, a new key per call), compiled and warmed up; None when it is off."""
    from scaling.program import sharding

    augment = device_augment(timer.plan.config.data)
    if not augment.active:
        return None
    images = np.random.default_rng(0).integers(0, 256, (timer.batch, *timer.plan.facts.image_shape), np.uint8)
    (images,) = sharding.global_batch(timer.program.mesh, images)
    run = jax.jit(augment_images, static_argnames=("augment",))
    jax.block_until_ready(run(jax.random.key(0), images, augment))

    def seconds(steps: int) -> float:
        start = time.perf_counter()
        for step in range(steps):
            out = run(jax.random.key(step), images, augment)
        jax.block_until_ready(out)
        return time.perf_counter() - start

    return seconds


def format_augment_bench(bench: AugmentBench, config_arg: str) -> str:
    """The medians as a table, each step against the step without augmentation."""
    height, width, channels = bench.image_shape
    lines = [f"{height}x{width}x{channels} images, batch {bench.batch}, {config_arg}, {bench.devices} device(s), "
             f"medians of {len(bench.step[0])} rounds",
             f"{'setting':<36} {'step images/s':>14} {'x no aug':>9} {'augment alone images/s':>23}"]
    for index, name in enumerate(bench.names):
        step, alone = bench.median(index), bench.median(index, "augment")
        alone_text = "-" if alone is None else f"{alone:,.0f}"
        lines.append(f"{name:<36} {step:14,.0f} {step / bench.median(0):9.3f} {alone_text:>23}")
    return "\n".join(lines)


def _bench_augment(args: argparse.Namespace) -> int:
    if min(args.steps, args.rounds, args.ops) < 1 or not 0 <= args.magnitude <= 10:
        raise ConfigError(f"--steps {args.steps}, --rounds {args.rounds}, --ops {args.ops}, --magnitude "
                          f"{args.magnitude:g}: steps, rounds and ops must be at least 1 and the magnitude in 0..10")
    bench = bench_augment(args.config, args.overrides, args.steps, args.rounds, args.ops, args.magnitude)
    print(format_augment_bench(bench, args.config))
    return 0
