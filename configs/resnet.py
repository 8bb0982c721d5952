"""ResNet v1.5 (BatchNorm) of any width and depth; by default a small one on the embedded digits.

Command (about a minute on 2 CPU cores, about 2% top-1 error on the held-out digits):
  scaling train --config configs/resnet.py:width=16,depth=10 --workdir runs/resnet
The argument sets any model knob: width, depth, block, stage_sizes, num_stages, stem. The stem follows the
images unless given: "small" (3x3 stride 1, no pooling) for the digits, "imagenet" (7x7 stride 2, max pool) for
images of 64 pixels and more, e.g. ImageNet (224 px unless data.resolution says otherwise):
  scaling train --config configs/resnet.py:width=64,depth=50,block=bottleneck --config.data.name=imagenet2012 \
      --config.data.data_dir DIR --workdir runs/resnet50
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg


def get_config(arg: str | None = None):
    """ResNet config; `arg` is `key=value,...` over the model knobs."""
    config = base_config("resnet")
    config.model.update(width=16, depth=10, stem=None)  # None: by the image size (defaults.IMAGE_SIZE_KNOBS)
    set_config_arg(config.model, arg)
    config.train.batch_size = 128
    config.train.epochs = 15.0
    config.train.eval_every_steps = 50
    config.optim.lr = 3e-3
    config.optim.weight_decay = 5e-4
    return config
