"""ConvNeXt of any width and depth; by default a small one on the digits.

Command:
  scaling train --config configs/convnext.py:width=16,depth=4 --workdir runs/convnext
The argument sets any model knob: width, depth, stage_sizes, patch_size (the stem's stride; unless given,
1 for the 8x8 digits and 4 for images of 64 pixels and more, e.g. ImageNet).
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg


def get_config(arg: str | None = None):
    """ConvNeXt config; `arg` is `key=value,...` over the model knobs."""
    config = base_config("convnext")
    config.model.update(width=16, depth=4, patch_size=None)  # None: by the image size
    set_config_arg(config.model, arg)
    config.train.batch_size = 128
    config.train.epochs = 30.0
    config.train.eval_every_steps = 50
    config.optim.lr = 1e-3
    config.optim.weight_decay = 0.05
    return config
