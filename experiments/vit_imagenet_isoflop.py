"""IsoFLOP study of ViT widths on nested ImageNet-1k subsets, for one node of 8 GPUs (Hoffmann et al. 2022, approach
2, with the cooldown branches of Hägele et al. 2024).

Four ViT widths, depth 12, patch 16, 224 px, 64 channels per head (Ti 192, S 384, M 576, B 768), train constant-LR
trunks of 1e18 training FLOPs (Ti, S, M) and 1e19 FLOPs (S, M, B), each on three nested class-balanced subsets of the
training split: 128,000 and 320,000 examples, and all 1,271,167 left after the 10,000-image minival. Each trunk
branches three linear cooldowns, at 20%, 40% and 80% of its steps, each cooling over its own last 20%: cooled-down runs
of 1/4, 1/2 and all of the trunk's compute. Per subset that makes six IsoFLOP budgets of three widths each, 2.5e17 to
1e19 FLOPs. bfloat16 compute; every run is data-parallel over 8 GPUs (mesh.data=8), global batch 1024.

Compute (`scaling sweep show`): 72 runs, total planned compute 2.72e+20 FLOPs. That counts every branch from step 0;
the work actually run, with each branch resuming from its trunk's checkpoint, is 1.34e20 FLOPs (the trunks' 9.9e19
plus 35% for the cooldowns).
Time, an estimate (no H100 figures from `scaling bench suite` are committed yet): at 30% MFU of the H100's 989 TFLOP/s
(bf16 dense; issue 16's target for ViT-B/16), 125 hours on one H100, or 16 hours on the 8 of one node. The narrow
widths reach a lower MFU, so plan for about a day on the node.
Disk: the uint8 cache holds rows x 224 x 224 x 3 bytes: the 1,271,167 training images (191.3 GB, one cache shared by
the nested subsets), the 50,000 validation images (7.5 GB) and the minival (1.5 GB), 200.4 GB in all
(`scaling data describe` lists them). The prepared imagenet2012 needs about 150 GB more, and the two tars about 145 GB
until it is built.

Commands. The data dir is tfds' default, $TFDS_DATA_DIR (else ~/tensorflow_datasets); put ILSVRC2012_img_train.tar
and ILSVRC2012_img_val.tar into $TFDS_DATA_DIR/downloads/manual/ first:
  export TFDS_DATA_DIR=/data/tensorflow_datasets
  scaling data prepare imagenet2012 --data-dir $TFDS_DATA_DIR
  scaling data describe --config configs/vit.py:depth=12,patch_size=16 --config.data.name=imagenet2012 \
      --config.data.minival_per_class=10
  scaling sweep show experiments/vit_imagenet_isoflop.py
  scaling train --dry-run --config configs/vit.py:depth=12,patch_size=16 --config.model.width=768 \
      --config.model.num_heads=12 --config.data.name=imagenet2012 --config.train.batch_size=1024 \
      --config.train.compute_dtype=bfloat16 --config.mesh.data=8
  scaling sweep run experiments/vit_imagenet_isoflop.py --root runs/vit-isoflop --parallel 1
  scaling sweep run experiments/vit_imagenet_isoflop.py --root /shared/runs/vit-isoflop --launcher slurm \
      --gpus-per-node 8 --timeout-min 240 --env TFDS_DATA_DIR=$TFDS_DATA_DIR
  scaling sweep results --root runs/vit-isoflop experiments/vit_imagenet_isoflop.py
  scaling report runs/vit-isoflop/results.csv --where schedule=constant+cooldown --by train_examples \
      --out runs/vit-isoflop/report
The dry run compiles the step of the largest point (ViT-B, 128 images per GPU) for the mesh and prints its memory per
device: run it on the node. `--parallel 1` gives each run all 8 GPUs of the node (or submit to Slurm, one node per
run); the cooldown branches start once their trunk has finished. The report fits the cooled-down runs only (`schedule`
constant+cooldown), one report per subset size.
"""

from scaling.sweep import chain, product, sweep, zipped

NAME = "vit-imagenet-isoflop"
CONFIG = "configs/vit.py:depth=12,patch_size=16"  # global-average pooling (configs/vit.py); imagenet2012 is 224 px
WIDTHS = {"Ti": (192, 3), "S": (384, 6), "M": (576, 9), "B": (768, 12)}  # (width, heads)
# training FLOPs of a trunk -> the widths trained at that budget; the largest budget first (its runs start first)
BUDGETS = {1e19: ("S", "M", "B"), 1e18: ("Ti", "S", "M")}
SUBSETS = (128_000, 320_000, None)  # data.train_examples, nested; None: the whole split less the minival
COOLDOWN_FRACTIONS = (0.2, 0.4, 0.8)  # branch points, as fractions of the trunk's steps
OVERRIDES = {
    "data.name": "imagenet2012",
    "data.minival_per_class": 10,
    "data.augment.inception_crop": True,
    "data.augment.flip": True,
    "train.epochs": None,
    "train.batch_size": 1024,
    "train.eval_batch_size": 1024,
    "train.compute_dtype": "bfloat16",
    "train.eval_every_steps": 2000,
    "train.checkpoint_every_steps": 2000,
    "optim.lr": 1e-3,
    "optim.weight_decay": 0.1,
    "optim.warmup_fraction": 0.05,
    "optim.grad_clip_norm": 1.0,
    "mesh.data": 8,
}


def get_grid():
    """Each budget crossed with its widths and every subset."""
    return chain(*(
        product(sweep("train.flops", [flops]),
                zipped(sweep("model.width", [WIDTHS[name][0] for name in names]),
                       sweep("model.num_heads", [WIDTHS[name][1] for name in names])),
                sweep("data.train_examples", list(SUBSETS)))
        for flops, names in BUDGETS.items()
    ))
