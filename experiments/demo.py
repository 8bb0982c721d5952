"""The main job: ResNets of 4 widths on 4 nested subsets of the embedded digits (16 runs).

  scaling sweep show experiments/demo.py
  scaling sweep run experiments/demo.py --root runs/demo --parallel 2
  scaling sweep results --root runs/demo && scaling report runs/demo/results.csv --out runs/demo/report

Every run trains 20 epochs of its subset and evaluates every 15 steps, so each run gives a curve of
error against compute; the final points form the (params, examples) grid for the joint L(N, D) fit.
"""

from scaling.sweep import product, sweep

NAME = "demo"
CONFIG = "configs/resnet.py:depth=10"
OVERRIDES = {
    "train.batch_size": 64,
    "train.epochs": 20.0,
    "train.eval_every_steps": 15,
    "train.log_every_steps": 15,
    "train.checkpoint_every_steps": 100,
}


def get_grid():
    """Widths x nested subset sizes."""
    return product(
        sweep("model.width", [4, 8, 16, 32]),
        sweep("data.train_examples", [180, 360, 720, 1437]),
    )
