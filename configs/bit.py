"""BiT: pre-activation ResNet v2 with GroupNorm and weight-standardised convs; by default a small one on the digits.

Command:
  scaling train --config configs/bit.py:width=16,depth=10 --workdir runs/bit
The argument sets any model knob: width, depth, block, stage_sizes, num_stages, stem. The stem follows the
images unless given: "small" for the digits, "imagenet" for images of 64 pixels and more (ImageNet).
BiT-R50x1 at ImageNet size: configs/bit.py:width=64,depth=50,block=bottleneck with --config.data.name=imagenet2012
(or configs/model.py:variant=bit-resnet50).
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg


def get_config(arg: str | None = None):
    """BiT config; `arg` is `key=value,...` over the model knobs."""
    config = base_config("bit")
    config.model.update(width=16, depth=10, block="basic", stem=None)  # None: by the image size
    set_config_arg(config.model, arg)
    config.train.batch_size = 128
    config.train.epochs = 15.0
    config.train.eval_every_steps = 50
    config.optim.lr = 3e-3
    config.optim.weight_decay = 5e-4
    return config
