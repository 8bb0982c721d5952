"""The `scaling models list|describe|size` commands: named architectures, their counts, shape rules."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from scaling.models.registry import MODEL_NAMES

_XLA_BATCH = 8  # images per lowered step: per-step costs (e.g. weight standardisation) are spread over them


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `models` and its subcommands."""
    models = subparsers.add_parser(
        "models", help="named architectures, their parameters and FLOPs, and configs sized to a target",
        description="Counts per image: 1 multiply-add = 2 FLOPs; training = forward + backward = 3 x forward.",
    )
    commands = models.add_subparsers(dest="models_command", required=True, metavar="MODELS_COMMAND")

    listing = commands.add_parser("list", help="print the named variants with parameters and multiply-adds")
    _add_data_arguments(listing)
    listing.set_defaults(handler=_list)

    describe = commands.add_parser(
        "describe", help="parameters, analytic multiply-adds and XLA's training FLOPs of one model",
    )
    describe.add_argument("name", help=f"a variant (see `scaling models list`) or a family: {', '.join(MODEL_NAMES)}")
    _add_data_arguments(describe)
    describe.set_defaults(handler=_describe)

    size = commands.add_parser(
        "size", help="the config of a family with a target parameter count or forward FLOPs",
        description="Shape rules: see scaling/models/sizing.py. Prints `scaling train` arguments and the counts.",
    )
    size.add_argument("--family", required=True, choices=MODEL_NAMES, help="model family")
    target = size.add_mutually_exclusive_group(required=True)
    target.add_argument("--params", type=float, help="target parameters, e.g. 20e6")
    target.add_argument("--flops", type=float, help="target forward FLOPs per image (2 x multiply-adds), e.g. 4e9")
    _add_data_arguments(size)
    size.set_defaults(handler=_size)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resolution", type=int, default=224, help="image height and width (default 224)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classes of the head (default 1000)")


def _si(value: float) -> str:
    """`value` with a k/M/G/T/P prefix, e.g. 4.089 G."""
    for power, prefix in ((15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(value) >= 10**power:
            return f"{value / 10**power:.4g} {prefix}"
    return f"{value:.4g}"


def _list(args: argparse.Namespace) -> int:
    from scaling.models.registry import VARIANT_NAMES, describe_model, model_counts, variant_config

    image_shape = (args.resolution, args.resolution, 3)
    print(f"{'variant':<18}{'parameters':>16}{'multiply-adds':>16}  (at {args.resolution}x{args.resolution}x3, "
          f"{args.num_classes} classes)")
    for name in VARIANT_NAMES:
        cfg = variant_config(name)
        counts = model_counts(cfg, image_shape=image_shape, num_classes=args.num_classes)
        print(f"{name:<18}{counts.params:>16,}{_si(counts.macs):>16}  {describe_model(cfg)}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from flax import nnx

    from scaling.models.registry import build_model, default_model_config, describe_model, model_counts, variant_config
    from scaling.program.flops import train_flops_per_example

    cfg = default_model_config(args.name) if args.name in MODEL_NAMES else variant_config(args.name)
    image_shape = (args.resolution, args.resolution, 3)
    counts = model_counts(cfg, image_shape=image_shape, num_classes=args.num_classes)
    abstract = nnx.eval_shape(
        lambda: build_model(cfg, image_shape=image_shape, num_classes=args.num_classes, rngs=nnx.Rngs(0))
    )
    xla = train_flops_per_example(abstract, image_shape, args.num_classes, _XLA_BATCH)
    analytic = 3 * 2 * counts.macs
    print(f"{args.name}: {describe_model(cfg)}")
    print(f"per image at {args.resolution}x{args.resolution}x3, {args.num_classes} classes")
    print(f"  parameters              {counts.params:>14,}   without the head {counts.body_params:,}")
    print(f"  forward multiply-adds   {_si(counts.macs):>14}   analytic")
    print(f"  forward FLOPs           {_si(2 * counts.macs):>14}   2 x multiply-adds")
    print(f"  {'':22}{'analytic':>14}{'XLA':>12}{'XLA/analytic':>14}")
    print(f"  {'training FLOPs':22}{_si(analytic):>14}{_si(xla):>12}{xla / analytic:>14.3f}")
    print(f"  (analytic: 3 x forward FLOPs; XLA: cost analysis of the lowered train step at batch {_XLA_BATCH})")
    return 0


def _size(args: argparse.Namespace) -> int:
    from scaling.models.registry import describe_model, model_counts
    from scaling.models.sizing import shape_for

    image_shape = (args.resolution, args.resolution, 3)
    cfg = shape_for(args.family, params=args.params, flops=args.flops, image_shape=image_shape,
                    num_classes=args.num_classes)
    counts = model_counts(cfg, image_shape=image_shape, num_classes=args.num_classes)
    achieved, target, what = (
        (counts.params, args.params, "parameters") if args.params is not None
        else (2 * counts.macs, args.flops, "forward FLOPs")
    )
    print(f"{args.family} with about {_si(target)} {what} at {args.resolution}x{args.resolution}x3, "
          f"{args.num_classes} classes (shape rules: scaling/models/sizing.py)")
    print(f"  {describe_model(cfg)}")
    print(f"  parameters {counts.params:,} (without the head {counts.body_params:,}), forward FLOPs "
          f"{_si(2 * counts.macs)} per image; achieved / target {what}: {achieved / target:.3f}")
    print(f"  scaling train {train_arguments(cfg)} --config.data.resolution={args.resolution} --workdir WORKDIR")
    return 0


def train_arguments(cfg: Mapping[str, Any]) -> str:
    """`--config configs/FAMILY.py:k=v,...` setting every knob of `cfg` (scalars or None, as the shape rules set)."""
    knobs = ",".join(f"{key}={value}" for key, value in cfg.items() if key != "name")
    return f"--config configs/{cfg['name']}.py:{knobs}"
