"""VGG (depth 11, 13, 16 or 19) of any width; by default a narrow VGG-11 on the digits.

Command:
  scaling train --config configs/vgg.py:width=16,depth=11 --workdir runs/vgg
The argument sets any model knob: width (first stage's channels, 64 = the paper's), depth,
batch_norm, dropout.
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg


def get_config(arg: str | None = None):
    """VGG config; `arg` is `key=value,...` over the model knobs."""
    config = base_config("vgg")
    config.model.update(width=16, depth=11, batch_norm=True)
    set_config_arg(config.model, arg)
    config.train.batch_size = 128
    config.train.epochs = 15.0
    config.train.eval_every_steps = 50
    config.optim.lr = 1e-3
    config.optim.weight_decay = 5e-4
    return config
