"""The main job, a small scaling study: ResNet-10s of 9 widths at 4 compute budgets on the embedded digits, and a
data axis of nested training subsets.

  scaling sweep show experiments/demo.py
  scaling sweep run experiments/demo.py --root runs/demo --parallel 2
  scaling sweep results --root runs/demo experiments/demo.py
  scaling report runs/demo/results.csv --out runs/demo/report

Every run trains from scratch with a cosine schedule for exactly its budget of training FLOPs (`train.flops`),
so the final rows of each budget form one IsoFLOP curve (Hoffmann et al. 2022, approach 2), and their evals
every 25 steps feed the envelope. Each budget trains a window of widths around its optimum (width about
2.5 at 1e9 FLOPs, 6 at 1e10 in a pilot), so every budget's error rises on both sides of its best width.

The data axis: at the largest budget, the four widths below its optimum also train on nested class-balanced
subsets of 180, 360 and 720 of the 1,437 training images (`data.train_examples`; each subset is a prefix of the
next). These small models see 17 to 92 epochs of even the full set there, so each point is trained about to
convergence, as in Rosenfeld et al. 2020; with the full set's runs they form a grid of model size by
training-set size. The report fits the compute laws and frontiers to the runs on the full training set and
Rosenfeld et al.'s law to this grid.
"""

from scaling.sweep import chain, product, sweep

NAME = "demo"
CONFIG = "configs/resnet.py:depth=10"
# training FLOPs -> the widths trained at that budget (a third of a decade apart), largest first: the
# longest runs start first, so the two workers finish together
BUDGETS = {
    1e10: (2, 3, 4, 5, 6, 8, 10, 12),
    4.6e9: (2, 3, 4, 5, 6, 8),
    2.2e9: (1, 2, 3, 4, 5, 6),
    1e9: (1, 2, 3, 4, 5),
}
# the data axis: widths x nested subset sizes (examples), trained at the largest budget
DATA_AXIS_WIDTHS = (2, 3, 4, 5)
SUBSETS = (180, 360, 720)
OVERRIDES = {
    "train.batch_size": 64,
    "train.epochs": None,
    "optim.warmup_fraction": 0.02,
    "train.eval_every_steps": 25,
    "train.log_every_steps": 100,
    "train.checkpoint_every_steps": 1000,
}


def get_grid():
    """Each budget crossed with its window of widths, then the data axis."""
    isoflop = [product(sweep("train.flops", [flops]), sweep("model.width", list(widths)))
               for flops, widths in BUDGETS.items()]
    data_axis = product(sweep("train.flops", [max(BUDGETS)]), sweep("model.width", list(DATA_AXIS_WIDTHS)),
                        sweep("data.train_examples", list(SUBSETS)))
    return chain(isoflop[0], data_axis, *isoflop[1:])
