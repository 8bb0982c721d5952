"""`scaling data prepare NAME` (build a tfds dataset, with the manual-download check for ImageNet) and
`scaling data describe --config ...` (the sizes a config will use)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DESCRIBE_EPILOG = """\
examples:
  scaling data describe --config configs/resnet.py --config.data.train_examples=1000
  scaling data describe --config configs/resnet.py --config.data.name=imagenet2012 \\
      --config.data.classes=100 --config.data.examples_per_class=100 --config.data.minival_per_class=10
"""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `data` and its subcommands."""
    data = subparsers.add_parser("data", help="prepare datasets and show what a config will read")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    prepare = commands.add_parser(
        "prepare", help="build a tfds dataset into a data_dir (ImageNet: from the manually downloaded tars)",
        description="Runs tfds' build for NAME. imagenet2012, imagenet2012_subset and imagenet2012_real need "
        "ILSVRC2012_img_train.tar / ILSVRC2012_img_val.tar in DATA_DIR/downloads/manual/ first; the other "
        "datasets are downloaded by tfds (network needed once).",
    )
    prepare.add_argument("name", help="tfds name, e.g. imagenet2012, imagenet_resized/64x64, imagenette, digits")
    prepare.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"),
                         help="tfds data_dir (default ~/tensorflow_datasets)")
    prepare.add_argument("--file-format", choices=("array_record", "tfrecord"), default="array_record",
                         help="array_record (default) allows random access: subsets and the streaming path")
    prepare.set_defaults(handler=_prepare)
    describe = commands.add_parser(
        "describe", help="print the classes, subset, minival and evaluation sizes a config will use",
        epilog=DESCRIBE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    describe.add_argument("--config", required=True, metavar="FILE[:ARG]", help="config file and its argument")
    describe.set_defaults(handler=_describe, takes_overrides=True)


def _prepare(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds

    from scaling.data.catalog import CATALOG, base_name, how_to_prepare
    from scaling.data.source import EMBEDDED_DATASETS, dataset_facts, prepare_embedded
    from scaling.errors import DataError

    if args.name in EMBEDDED_DATASETS:
        prepare_embedded(args.name, args.data_dir, args.file_format)
    else:
        entry = CATALOG.get(base_name(args.name))
        manual_dir = Path(args.data_dir) / "downloads" / "manual"
        missing = [name for name in (entry.manual_files if entry else ()) if not (manual_dir / name).exists()]
        if missing:
            raise DataError(f"missing {', '.join(missing)} in {manual_dir}. {how_to_prepare(args.name, args.data_dir)}")
        builder = tfds.builder(args.name, data_dir=args.data_dir)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)), file_format=args.file_format
        )
    facts = dataset_facts(args.name, args.data_dir)
    splits = ", ".join(f"{split} {size:,}" for split, size in facts.split_sizes.items())
    print(f"{args.name} is prepared in {args.data_dir}: {facts.num_classes} classes; {splits}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from scaling.config.loading import load_config
    from scaling.data.cache import cache_directory, rows_filled, split_labels
    from scaling.data.catalog import eval_split
    from scaling.data.pipeline import cache_root
    from scaling.data.source import open_builder
    from scaling.plan import plan_run

    config = load_config(args.config, args.overrides)
    plan = plan_run(config)
    data, selection = config.data, plan.selection
    builder = open_builder(data.name, data.data_dir)
    root = cache_root(data, builder)
    split = eval_split(data, plan.facts)
    evaluated = len(selection.eval_indices(split_labels(builder, split, root)))
    total_classes = builder.info.features[builder.info.supervised_keys[1]].num_classes
    cache = cache_directory(builder, data.train_split, selection.train_order, data.resolution, 1.0, root)
    rows = rows_filled(cache)
    lines = [
        ("dataset", f"{builder.info.full_name} in {data.data_dir or 'the tfds default data_dir'}"),
        ("classes", f"{selection.num_classes} of {total_classes}"
                    + (" (first K of the fixed class order)" if data.classes else "")),
        ("training pool", f"{len(selection.train_order):,} examples of split {data.train_split!r}"
                          " in the chosen classes"),
        ("training subset", f"{selection.train_examples:,} examples (a prefix of the nested class-balanced order)"),
        ("minival", f"{len(selection.minival):,} examples held out of {data.train_split!r}"
                    f" ({data.minival_per_class} per class)"),
        ("evaluation", f"{evaluated:,} examples of split {split!r} (central crop {data.eval_crop_fraction:g})"),
        ("images", f"{'x'.join(map(str, plan.facts.image_shape))} uint8"),
        ("pipeline", data.pipeline + (" (decode and crop on the host every step)" if data.pipeline == "stream"
                                      else " (uint8 cache, augmentation on the device)")),
        ("cache", f"{cache} ({rows:,} training rows cached)"),
        ("augmentation", ", ".join(f"{key}={value}" for key, value in data.augment.items())),
        ("training", f"{plan.num_steps:,} steps of {plan.batch_size} = "
                     f"{plan.num_steps * plan.batch_size / selection.train_examples:.2f} epochs of the subset"),
    ]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")
    return 0

