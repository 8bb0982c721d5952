"""AlexNet (one-tower, Krizhevsky 2014) of any width; by default a narrow one on the digits.

Command:
  scaling train --config configs/alexnet.py:width=16 --workdir runs/alexnet
The argument sets any model knob: width (first conv's channels, 64 = the paper's), dropout.
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg


def get_config(arg: str | None = None):
    """AlexNet config; `arg` is `key=value,...` over the model knobs."""
    config = base_config("alexnet")
    config.model.update(width=16)
    set_config_arg(config.model, arg)
    config.train.batch_size = 128
    config.train.epochs = 15.0
    config.train.eval_every_steps = 50
    config.optim.lr = 1e-3
    config.optim.weight_decay = 5e-4
    return config
