"""`scaling bench`: `pack` (N same-shape models packed in one vmapped program vs one after another),
`data` (input paths vs the model and a plain tf.data pipeline), `loop` (the full training loop vs its
bare step), `fit` (analysis' vectorised multi-start fit vs a scipy loop) and `suite` (all of them and more
at the issue's shapes, as a table and a JSON file)."""

from __future__ import annotations

import argparse

from analysis.cli import add_bench_fit
from scaling.config.loading import load_config
from scaling.tools.augment_bench import add_augment_command
from scaling.tools.bench_suite import add_suite_command


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
    add_suite_command(commands)
    add_augment_command(commands)


def _bench_pack(args: argparse.Namespace) -> int:
    from scaling.tools.pack_bench import bench_pack, format_pack_bench, pack_configs

    configs = pack_configs(args.config, args.members, args.steps, args.overrides)
    print(format_pack_bench(bench_pack(configs), args.config, configs[0]))
    return 0


def _bench_data(args: argparse.Namespace) -> int:
    from scaling.tools.data_bench import bench_data
    from scaling.tools.step_bench import train_step_images_per_second

    config = load_config(args.config, ["wandb.mode=disabled", *args.overrides])
    rows = bench_data(config, args.steps, lambda: train_step_images_per_second(config, max(2, args.steps // 4)))
    rates = dict(rows)
    model, reference = rates["model train step consumes"], rates.get("tf.data reference (decode, crop)")
    print(f"{config.data.name}, batch {config.train.batch_size}, {args.config}")
    for name, rate in rows:  # the synthetic dataset has no files, so no tf.data reference
        print(f"{name:<34} {rate:12,.0f} images/s  {rate / model:8.1f}x model"
              + (f"  {rate / reference:6.2f}x tf.data" if reference else ""))
    return 0


def _bench_loop(args: argparse.Namespace) -> int:
    from scaling.tools.loop_bench import bench_loop, bench_settings, format_loop_bench

    config = load_config(args.config, [*bench_settings(args.steps), *args.overrides])
    print(format_loop_bench(bench_loop(config, args.rounds), args.config, config))
    return 0
