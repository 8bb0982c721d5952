"""The `scaling` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from analysis.cli import add_commands as add_analysis_commands
from analysis.table.contract import RESULT_FILE, Status
from scaling.errors import PREEMPTED_EXIT, USAGE_EXIT, BusyError, CheckpointError, ConfigError, DataError, RecordError
from scaling.sweep.commands import add_commands as add_sweep_commands
from scaling.tools.bench import add_commands as add_bench_commands
from scaling.tools.data_commands import add_commands as add_data_commands
from scaling.tools.model_commands import add_commands as add_model_commands

TRAIN_EPILOG = """\
config overrides:
  --config.KEY=VALUE    set any config key, e.g. --config.optim.lr=3e-3 --config.data.train_examples=400
                        --config.train.epochs=5 (durations: train.steps, train.examples or train.epochs).
                        Data: --config.data.name=imagenet2012 --config.data.classes=100
                        --config.data.examples_per_class=50 --config.data.minival_per_class=10
                        --config.data.pipeline=stream --config.data.augment.flip=True (see `scaling data describe`).
                        Unknown keys and wrong types are errors. Sections: model, data, train, optim, mesh, wandb,
                        tensorboard (--config.tensorboard.enabled=True: event files in WORKDIR/tensorboard/).

ImageNet-family data (imagenet2012, imagenet2012_subset, imagenet_resized, imagenette, imagenet_v2,
imagenet2012_real) needs no other key: images are 224 px unless data.resolution says otherwise
(imagenet_resized: its stored size), normalised with ImageNet's mean and std (data.normalization=auto;
'estimate' computes them from 10,000 training images, as for other datasets), and the configs' size knobs
left unset (ResNet/BiT stem, ViT/ConvNeXt patch_size) take their ImageNet values for images of 64 px and more.

examples:
  scaling train --config configs/resnet.py:width=16,depth=10 --workdir runs/resnet
  scaling train --config configs/vit.py:width=64,depth=4 --workdir runs/vit --config.train.epochs=5
  scaling train --config configs/resnet.py:width=64,depth=50,block=bottleneck --workdir runs/resnet50 \\
      --config.data.name=imagenet2012 --config.data.data_dir ~/tensorflow_datasets --config.train.epochs=90
  scaling train --config configs/history/resnet50.py:cheap --config.data.data_dir ~/tensorflow_datasets \\
      --workdir runs/history/resnet50-64px   # ResNet-50 of 2015 on your imagenet2012 at 64 px
  scaling train --config configs/resnet.py --workdir /shared/resnet --coordinator host0:1234 \\
      --num-processes 2 --process-id 0       # on host0; the same with --process-id 1 on host1

Running the same command again resumes from the workdir's latest checkpoint. The workdir receives
config.json (every key as the run used it, dataset defaults decided), metrics.jsonl (one line per log or
eval step), result.json and checkpoints/.
Exit status: 0 completed, 1 failed or diverged, 2 bad config or data, 3 preempted (SIGTERM: the run
checkpointed and stopped; the same command resumes it).

`--dry-run` compiles the step for the configured mesh (--config.mesh.data/fsdp/tensor) and prints memory
per device, FLOPs per step and each parameter group's layout, e.g.
  scaling train --dry-run --config configs/model.py:variant=vit-b/16 --config.data.name=imagenet2012 \\
      --config.data.resolution=224 --config.mesh.fsdp=8 --config.train.batch_size=256
"""


def _version() -> str:
    """The installed package's version (pyproject.toml's), or "unknown" when run from a tree that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagenet-scaling")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `scaling` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # TensorFlow only decodes images here
    logging.getLogger("absl").setLevel(logging.CRITICAL)  # orbax and tfds report errors by raising them to us
    parser = argparse.ArgumentParser(
        prog="scaling", description="JAX scaling-law research suite for ImageNet: train Flax models of any size."
    )
    parser.add_argument("--version", action="version", version=f"scaling {_version()}",
                        help="print the installed version of the suite and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train", help="train and evaluate one model from a config file",
        description="Train and evaluate one model; resumes from the workdir's latest checkpoint.",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--config", required=True, metavar="FILE[:ARG]",
                       help="config file and its argument, e.g. configs/resnet.py:width=16,depth=10")
    train.add_argument("--workdir", help="directory for this run's records and checkpoints (required unless --dry-run)")
    train.add_argument("--dry-run", action="store_true",
                       help="compile the step ahead of time for the configured mesh and print memory per device, "
                       "FLOPs per step and the layout of each parameter group; no data is read, nothing trained")
    train.add_argument("--wandb", choices=("offline", "online", "disabled"),
                       help="wandb mode (default: the config's wandb.mode, offline)")
    hosts = train.add_argument_group(
        "many processes", "one run over several processes (hosts); all three together, or none where JAX detects "
        "the cluster itself (a multi-task Slurm step, a multi-host TPU slice)")
    hosts.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, which serves the coordinator")
    hosts.add_argument("--num-processes", type=int, metavar="N", help="number of processes in the run")
    hosts.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0 to N-1")
    train.set_defaults(handler=_train)
    add_sweep_commands(commands)
    add_model_commands(commands)
    add_data_commands(commands)
    add_analysis_commands(commands)
    add_bench_commands(commands)
    args, extra = parser.parse_known_args(argv)
    takes_overrides = args.command == "train" or getattr(args, "takes_overrides", False)
    args.overrides = _config_overrides(extra, parser) if takes_overrides else extra
    if extra and not takes_overrides:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.handler(args)
    except (ConfigError, DataError, CheckpointError, BusyError, RecordError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT


def _config_overrides(extra: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--config.a.b=v` and `--config.a.b v` arguments as `a.b=v` strings; anything else is an error."""
    overrides, items = [], iter(extra)
    for item in items:
        if not item.startswith("--config."):
            parser.error(f"unrecognized argument {item!r}; config keys are set as --config.KEY=VALUE")
        if "=" not in item:
            item = f"{item}={next(items, '')}"
        overrides.append(item.removeprefix("--config."))
    return overrides


def _train(args: argparse.Namespace) -> int:
    from scaling.config.loading import load_config
    from scaling.runtime.distributed import initialize
    from scaling.train import train_and_evaluate
    from scaling.workdir.records import TRACEBACK_FILE

    initialize(args.coordinator, args.num_processes, args.process_id)
    config = load_config(args.config, args.overrides)
    if args.dry_run:
        from scaling.tools.dry_run import dry_run

        print(dry_run(config))
        return 0
    if args.workdir is None:
        raise ConfigError("scaling train needs --workdir DIR (or --dry-run)")
    if args.wandb:
        config.wandb.mode = args.wandb
    try:
        result = train_and_evaluate(config, args.workdir)
    except (ConfigError, DataError, CheckpointError, BusyError, RecordError):
        raise
    except Exception as error:  # recorded in result.json; a machine fault (e.g. disk full) is one line, not pages
        print(f"error: run failed: {type(error).__name__}: {error} (recorded in {Path(args.workdir) / RESULT_FILE}; "
              f"traceback in {Path(args.workdir) / TRACEBACK_FILE})", file=sys.stderr)
        return 1
    if result.status != Status.COMPLETED:
        print(f"error: run {result.status}: {result.error}", file=sys.stderr)
        return PREEMPTED_EXIT if result.status == Status.PREEMPTED else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

