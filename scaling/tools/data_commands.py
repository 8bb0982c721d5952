"""`scaling data prepare NAME` (build a tfds dataset, with the manual-download check for ImageNet) and
`scaling data describe --config ...` (the sizes a config will use)."""

from __future__ import annotations

import argparse
import os

DESCRIBE_EPILOG = """\
Nothing is decoded or written but the labels (cached once). Each cache line gives a uint8 cache the run will
read, rows x image shape = bytes, whether it is new, partly or fully built, and its folder under the cache dir
(data.cache_dir, default DATA_DIR/scaling_cache/): the training subset (data.pipeline=cache; streaming with
data.normalization=estimate, its first 10,000 images), the evaluation split restricted to the chosen classes,
minival and each data.extra_eval set, one per resolution, crop and class subset (nested training subsets
share one). E.g. the 50,000 ImageNet validation images at 224 px with crop 0.875 take 7.5 GB, the 1,281,167
training images 192.9 GB: a cache's images.u8 is exactly rows x H x W x 3 bytes; the labels beside it are
128 + 4 x N bytes per split. With data.local_cache_dir it also says how much each node copies there. A cache
filesystem without room for what is to be written ends it with one error line (the folder, the bytes needed,
the bytes free).

examples:
  scaling data describe --config configs/resnet.py --config.data.train_examples=1000
  scaling data describe --config configs/resnet.py --config.data.name=imagenet2012 \\
      --config.data.classes=100 --config.data.examples_per_class=100 --config.data.minival_per_class=10
  scaling data describe --config configs/history/resnet50.py:cheap --config.data.data_dir ~/tensorflow_datasets
"""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `data` and its subcommands."""
    data = subparsers.add_parser("data", help="prepare datasets and show what a config will read")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    prepare = commands.add_parser(
        "prepare", help="build a tfds dataset into a data_dir (ImageNet: from the manually downloaded tars)",
        description="Runs tfds' build for NAME. imagenet2012, imagenet2012_subset and imagenet2012_real need "
        "ILSVRC2012_img_train.tar / ILSVRC2012_img_val.tar in DATA_DIR/downloads/manual/ first (the validation tar's "
        "names must run unbroken from ILSVRC2012_val_00000001.JPEG: tfds labels them by position); the other "
        "datasets are downloaded by tfds (network needed once). Ends with a summary of what was built.",
    )
    prepare.add_argument("name", help="tfds name, e.g. imagenet2012, imagenet_resized/64x64, imagenette, digits")
    prepare.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"),
                         help="tfds data_dir (default ~/tensorflow_datasets)")
    prepare.add_argument("--file-format", choices=("array_record", "tfrecord"), default="array_record",
                         help="array_record (default) allows random access: subsets and the streaming path; a "
                         "dataset already prepared as tfrecord gets array_record copies of its shards beside them")
    prepare.add_argument("--verbose", action="store_true", help="show tfds' progress bars and logs while it builds")
    prepare.set_defaults(handler=_prepare)
    describe = commands.add_parser(
        "describe", help="print the classes, subset, minival and evaluation sizes a config will use, and the "
        "caches (and their sizes on disk) it will create",
        epilog=DESCRIBE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    describe.add_argument("--config", required=True, metavar="FILE[:ARG]", help="config file and its argument")
    describe.set_defaults(handler=_describe, takes_overrides=True)


def _prepare(args: argparse.Namespace) -> int:
    import sys

    from scaling.data.preparation import prepare, quiet, summary
    from scaling.data.source import require_tfds
    from scaling.data.synthetic import is_synthetic
    from scaling.errors import ConfigError

    if is_synthetic(args.name):
        raise ConfigError("the synthetic dataset is generated in memory when a run starts: there is nothing to prepare")
    require_tfds(args.name)
    with quiet(args.verbose):
        prepared = prepare(args.name, args.data_dir, args.file_format)
        lines, warnings = summary(prepared, args.data_dir)
    print(f"{args.name} is prepared:")
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"  {name:<{width}}  {value}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _describe(args: argparse.Namespace) -> int:
    from scaling.config.loading import load_config
    from scaling.data.cache import (
        cache_bytes,
        check_free_space,
        describe_size,
        format_bytes,
        labels_path,
        rows_filled,
    )
    from scaling.data.paths import is_remote, size_of
    from scaling.data.pipeline import IMAGENET_MEAN, IMAGENET_STD, NORM_ROWS, cache_root, normalization_kind, run_caches
    from scaling.data.preparation import prepared_validation
    from scaling.data.staging import needs_copy
    from scaling.data.synthetic import SyntheticDataset
    from scaling.plan import plan_run

    config = load_config(args.config, args.overrides)
    plan = plan_run(config)
    data, selection, builder = config.data, plan.selection, plan.builder
    root = cache_root(data, builder)
    caches = run_caches(config, builder, plan.facts, selection)
    evaluation = next(use for use in caches if use.name == "eval")
    norm = normalization_kind(data)
    if isinstance(builder, SyntheticDataset):
        total_classes, validation = builder.classes, None
        dataset = (f"synthetic, generated in host memory (data.synthetic: seed {builder.seed}, "
                   f"{builder.train_examples:,} train and {builder.eval_examples:,} validation images)")
    else:
        total_classes = builder.info.features[builder.info.supervised_keys[1]].num_classes
        validation = prepared_validation(builder)  # ImageNet: are the validation labels right (names unbroken)?
        dataset = f"{builder.info.full_name} in {data.data_dir or 'the tfds default data_dir'}"
    lines = [
        ("dataset", dataset),
        ("classes", f"{selection.num_classes} of {total_classes}"
                    + (" (first K of the fixed class order)" if data.classes else "")),
        ("training pool", f"{len(selection.train_order):,} examples of split {data.train_split!r}"
                          " in the chosen classes"),
        ("training subset", f"{selection.train_examples:,} examples (a prefix of the nested class-balanced order)"),
        ("minival", f"{len(selection.minival):,} examples held out of {data.train_split!r}"
                    f" ({data.minival_per_class} per class)"),
        ("evaluation", f"{evaluation.rows:,} examples of split {evaluation.split!r}"
                       f" (central crop {data.eval_crop_fraction:g})"),
        *([("validation", validation.describe())] if validation else []),
        ("images", f"{'x'.join(map(str, plan.facts.image_shape))} uint8"
                   + ("" if data.resolution else " (the stored size)")),
        ("normalization", f"ImageNet's mean {IMAGENET_MEAN} and std {IMAGENET_STD}" if norm == "imagenet"
                          else f"estimated from {min(NORM_ROWS, selection.train_examples):,} training images"),
        ("pipeline", data.pipeline + (" (decode and crop on the host every step)" if data.pipeline == "stream"
                                      else " (uint8 cache, augmentation on the device)")),
        ("augmentation", ", ".join(f"{key}={value}" for key, value in data.augment.items())),
        ("training", f"{plan.num_steps:,} steps of {plan.batch_size} = "
                     f"{plan.num_steps * plan.batch_size / selection.train_examples:.2f} epochs of the subset"),
    ]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")
    if root is None:
        print(f"images generated in host memory when the run starts (nothing on disk): "
              f"{format_bytes(sum(use.size for use in caches))} in all")
        for use in caches:
            print(f"  {use.name:<{max(len(use.name) for use in caches)}}  {describe_size(use.rows, use.image_shape)}")
        return 0
    rows, new_bytes = [], 0  # the uint8 caches the run will read: what they hold and what is still to write
    for use in caches:
        filled = rows_filled(use.directory, use.image_shape)
        new_bytes += cache_bytes(max(use.rows - filled, 0), use.image_shape)
        state = "new" if not filled else "built" if filled >= use.rows else f"{filled:,} rows built"
        rows.append((use.name, describe_size(use.rows, use.image_shape), state, str(use.directory.relative_to(root))))
    print(f"caches in {root}" + ("" if data.cache_dir else " (the default; data.cache_dir moves or shares them)")
          + f": {format_bytes(new_bytes)} to write, {format_bytes(sum(use.size for use in caches))} in all")
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  " + "  ".join(f"{value:<{size}}" for value, size in zip(row, [*widths, 0])).rstrip())
    labels = sorted({labels_path(use.builder, use.split, root) for use in caches}, key=str)
    print(f"labels cached beside them: {format_bytes(sum(size_of(path) for path in labels))} in "
          + ", ".join(str(path.parent.relative_to(root)) for path in labels))
    local_root = caches[0].local_root
    if local_root is not None:
        to_copy = [use for use in caches if needs_copy(use.directory, use.local_directory)]
        copy_bytes = sum(use.size for use in to_copy)
        print(f"node-local copies in {local_root} (data.local_cache_dir): {format_bytes(copy_bytes)} to copy to "
              f"this node ({len(to_copy)} of {len(caches)} caches)")
        check_free_space(local_root, copy_bytes, "the node-local copies of the caches")
    if not is_remote(root):
        check_free_space(root, new_bytes, "the caches this config builds")
    return 0
