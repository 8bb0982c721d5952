"""ResNet-18 widths x nested data sizes on imagenet_resized/64x64, for one GPU in a day (the grid of Rosenfeld et al.
2020: error as a joint function of model and data size).

Five widths of ResNet-18 (basic blocks, ImageNet stem: 7x7 stride 2 and max pool; base width 16 to 256, 0.8M to
181M parameters; width 64 is the standard ResNet-18) each train on five nested class-balanced subsets of the 64x64
training split: 80,000, 160,000, 320,000 and 640,000 examples, and all 1,271,167 left after the 10,000-image minival.
Every run sees 40M examples (78,125 steps of 512, about 31 epochs of the whole split) under a cosine schedule, so the
small subsets are seen many times over: the grid measures how error falls with data as well as with width.
bfloat16 compute.

Compute (`scaling sweep show`): 25 runs, total planned compute 2.72e+18 FLOPs.
Time, an estimate (no H100 figures from `scaling bench suite` are committed yet): at 10% MFU of the H100's 989 TFLOP/s
(bf16 dense; below issue 16's ResNet-50 target of 12%, for the small feature maps at 64 px), 7.7 hours on one H100. The
narrow widths are bound by per-step overhead rather than FLOPs; a day leaves room for an MFU as low as 3.5%.
Disk: the uint8 cache holds rows x 64 x 64 x 3 bytes: the 1,271,167 training images (15.6 GB, one cache shared by the
nested subsets), the 50,000 validation images (614 MB) and the minival (123 MB), 16.4 GB in all (`scaling data
describe` lists them), beside the prepared imagenet_resized/64x64 itself.

Commands. The data dir is tfds' default, $TFDS_DATA_DIR (else ~/tensorflow_datasets); tfds downloads the dataset
(network needed once):
  export TFDS_DATA_DIR=/data/tensorflow_datasets
  scaling data prepare imagenet_resized/64x64 --data-dir $TFDS_DATA_DIR
  scaling data describe --config configs/resnet.py:depth=18 --config.data.name=imagenet_resized/64x64 \
      --config.data.minival_per_class=10
  scaling sweep show experiments/resnet_imagenet64_grid.py
  scaling train --dry-run --config configs/resnet.py:depth=18 --config.model.width=256 \
      --config.data.name=imagenet_resized/64x64 --config.train.batch_size=512 --config.train.compute_dtype=bfloat16
  scaling sweep run experiments/resnet_imagenet64_grid.py --root runs/resnet64
  scaling sweep results --root runs/resnet64 experiments/resnet_imagenet64_grid.py
  scaling report runs/resnet64/results.csv --law rosenfeld --law chinchilla --x params,train_examples \
      --out runs/resnet64/report
The dry run compiles the step of the largest point (width 256) and prints its memory on the GPU. The report fits the
joint laws to each run's final error against its parameters and its subset size (`train_examples`).
"""

from scaling.sweep import product, sweep

NAME = "resnet-imagenet64-grid"
CONFIG = "configs/resnet.py:depth=18"  # basic blocks; the ImageNet stem, as configs/resnet.py picks for 64 px
WIDTHS = (256, 128, 64, 32, 16)  # widest first: the longest runs start first
SUBSETS = (80_000, 160_000, 320_000, 640_000, None)  # data.train_examples, nested; None: the whole split less minival
OVERRIDES = {
    "data.name": "imagenet_resized/64x64",
    "data.minival_per_class": 10,
    "data.augment.inception_crop": True,
    "data.augment.min_area": 0.25,
    "data.augment.flip": True,
    "train.epochs": None,
    "train.examples": 40_000_000,
    "train.batch_size": 512,
    "train.eval_batch_size": 1000,
    "train.compute_dtype": "bfloat16",
    "train.label_smoothing": 0.1,
    "train.eval_every_steps": 4000,
    "train.checkpoint_every_steps": 4000,
    "optim.lr": 2e-3,
    "optim.weight_decay": 0.05,
    "optim.warmup_fraction": 0.02,
}


def get_grid():
    """Every width on every subset."""
    return product(sweep("model.width", list(WIDTHS)), sweep("data.train_examples", list(SUBSETS)))
