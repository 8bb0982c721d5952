"""`scaling bench`: `pack` (N same-shape models packed in one vmapped program vs one after another),
`data` (input paths vs the model and a plain tf.data pipeline), `loop` (the full training loop vs its
bare step) and `fit` (analysis' vectorised multi-start fit vs a scipy loop)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.cli import add_bench_fit
from scaling.config.loading import load_config
from scaling.workdir.tracking import read_metrics


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `bench` and its subcommands."""
    bench = subparsers.add_parser("bench", help="speed benchmarks, printed as ratios against a reference run alongside")
    commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    pack = commands.add_parser(
        "pack", help="train N seeds packed with jax.vmap and one after another; print the throughput ratio",
        description="Both ways train the same N configs (seeds 0..N-1) for the same steps on the same data. "
        "Extra --config.KEY=VALUE arguments override the config.",
    )
    pack.add_argument("--config", default="configs/resnet.py:width=8,depth=10", help="config file and argument")
    pack.add_argument("--members", type=int, default=4, help="models in the pack (default 4)")
    pack.add_argument("--steps", type=int, default=100, help="training steps of each model (default 100)")
    pack.set_defaults(handler=_bench_pack, takes_overrides=True)
    data = commands.add_parser(
        "data", help="images/s of the cache and streaming input paths vs the model's step and a plain tf.data pipeline",
        description="Times the uint8-cache gather, the streaming decode + inception crop (array_record datasets with "
        "data.resolution set), a plain tf.data decode-crop-batch pipeline on the same files (the reference), and "
        "the bare train step of the config's model with the batch in memory. Extra --config.KEY=VALUE arguments "
        "override the config.",
    )
    data.add_argument("--config", default="configs/resnet.py:depth=18", help="config file and argument")
    data.add_argument("--steps", type=int, default=20, help="batches timed per path (default 20)")
    data.set_defaults(handler=_bench_data, takes_overrides=True)
    loop = commands.add_parser(
        "loop", help="steps/s of the full training loop vs the bare compiled step with the batch in memory",
        description="Trains the config from scratch (data, logging and the config's checkpoints included; "
        "evaluation only at the end, wandb off) and times as many bare steps of the same compiled program on "
        "one batch already on the devices; prints both steps/s and their ratio (medians over the rounds, "
        "timed after the first logging window). Extra --config.KEY=VALUE arguments override the config.",
    )
    loop.add_argument("--config", default="configs/resnet.py:width=16,depth=10", help="config file and argument")
    loop.add_argument("--steps", type=int, default=420,
                      help="training steps of each round (default 420: with the default train.log_every_steps=20 "
                      "and train.checkpoint_every_steps=200, 400 timed steps hold 2 checkpoints, a long run's share)")
    loop.add_argument("--rounds", type=int, default=3, help="loop runs alternated with bare timings (default 3)")
    loop.set_defaults(handler=_bench_loop, takes_overrides=True)
    add_bench_fit(commands, "fit")


def _bench_pack(args: argparse.Namespace) -> int:
    from scaling.tools.loop_bench import bench_settings
    from scaling.train import train_and_evaluate, train_packed

    settings = [*bench_settings(args.steps), f"train.log_every_steps={max(1, args.steps // 5)}", *args.overrides]
    configs = [load_config(args.config, [*settings, f"seed={i}", f"data.seed={i}"]) for i in range(args.members)]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        for index, config in enumerate(configs):
            train_and_evaluate(config, root / f"alone{index}")
        alone_wall = time.perf_counter() - start
        start = time.perf_counter()
        train_packed(configs, [root / f"packed{index}" for index in range(args.members)])
        packed_wall = time.perf_counter() - start
        alone_speed = sum(_steady_speed(root / f"alone{i}") for i in range(args.members)) / args.members
        packed_speed = sum(_steady_speed(root / f"packed{i}") for i in range(args.members))
    batch = configs[0].train.batch_size
    print(f"{args.members} models x {args.steps} steps of {batch} examples, {args.config}")
    print(f"one after another: {alone_wall:7.1f} s end to end, {alone_speed:10,.0f} examples/s while training")
    print(f"packed (vmap)    : {packed_wall:7.1f} s end to end, {packed_speed:10,.0f} examples/s while training")
    print(f"ratio packed/sequential: {alone_wall / packed_wall:.2f}x end to end, "
          f"{packed_speed / alone_speed:.2f}x training throughput")
    return 0


def _bench_data(args: argparse.Namespace) -> int:
    from scaling.tools.data_bench import bench_data
    from scaling.tools.step_bench import train_step_images_per_second

    config = load_config(args.config, ["wandb.mode=disabled", *args.overrides])
    rows = bench_data(config, args.steps, lambda: train_step_images_per_second(config, max(2, args.steps // 4)))
    rates = dict(rows)
    model, reference = rates["model train step consumes"], rates["tf.data reference (decode, crop)"]
    print(f"{config.data.name}, batch {config.train.batch_size}, {args.config}")
    for name, rate in rows:
        print(f"{name:<34} {rate:12,.0f} images/s  {rate / model:8.1f}x model  {rate / reference:6.2f}x tf.data")
    return 0


def _bench_loop(args: argparse.Namespace) -> int:
    from scaling.tools.loop_bench import bench_loop, bench_settings, format_loop_bench

    config = load_config(args.config, [*bench_settings(args.steps), *args.overrides])
    print(format_loop_bench(bench_loop(config, args.rounds), args.config, config))
    return 0


def _steady_speed(workdir: Path) -> float:
    """Median examples/s of a run's logging windows after the first (which includes warm-up)."""
    speeds = [line["examples_per_second"] for line in read_metrics(workdir) if line["kind"] == "train"]
    return float(np.median(speeds[1:] or speeds))
