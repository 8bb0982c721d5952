"""The main job, a small scaling study: ResNet-10s of 9 widths at 4 compute budgets on the embedded digits.

  scaling sweep show experiments/demo.py
  scaling sweep run experiments/demo.py --root runs/demo --parallel 2
  scaling sweep results --root runs/demo experiments/demo.py
  scaling report runs/demo/results.csv --out runs/demo/report

Every run trains from scratch with a cosine schedule for exactly its budget of training FLOPs (`train.flops`),
so the final rows of each budget form one IsoFLOP curve (Hoffmann et al. 2022, approach 2), and their evals
every 25 steps feed the envelope. Each budget trains a window of widths around its optimum (width about
2.5 at 1e9 FLOPs, 6 at 1e10 in a pilot), so every budget's error rises on both sides of its best width.
"""

from scaling.sweep import chain, product, sweep

NAME = "demo"
CONFIG = "configs/resnet.py:depth=10"
# training FLOPs -> the widths trained at that budget (a third of a decade apart), largest first: the
# longest runs start first, so the two workers finish together
BUDGETS = {
    1e10: (3, 4, 5, 6, 8, 10, 12),
    4.6e9: (2, 3, 4, 5, 6, 8),
    2.2e9: (1, 2, 3, 4, 5, 6),
    1e9: (1, 2, 3, 4, 5),
}
OVERRIDES = {
    "train.batch_size": 64,
    "train.epochs": None,
    "optim.warmup_fraction": 0.02,
    "train.eval_every_steps": 25,
    "train.log_every_steps": 100,
    "train.checkpoint_every_steps": 1000,
}


def get_grid():
    """Each budget crossed with its window of widths."""
    return chain(*(product(sweep("train.flops", [flops]), sweep("model.width", list(widths)))
                   for flops, widths in BUDGETS.items()))
