"""Any named architecture (`scaling models list`), e.g. ViT-S/16, ResNet-50, VGG-16, ConvNeXt-T.

Command (ImageNet-sized images: data.resolution is 224 and the run 90 epochs unless overridden):
  scaling train --config configs/model.py:variant=vit-s/16 --config.data.name=imagenet2012 --workdir runs/vit-s16
The argument is variant=NAME, then optionally any model knob of its family: variant=resnet50,width=32.
Training settings are the base config's (AdamW); the historic recipes live in configs/history/.
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg
from scaling.errors import ConfigError
from scaling.models import variant_config


def get_config(arg: str | None = None):
    """Config of a named variant; `arg` is `variant=NAME[,key=value,...]`."""
    first, _, rest = (arg or "").partition(",")
    key, _, name = first.partition("=")
    if key != "variant" or not name:
        raise ConfigError(
            f"configs/model.py needs variant=NAME first, e.g. configs/model.py:variant=vit-s/16, got {arg!r}; "
            "`scaling models list` prints the names"
        )
    model = variant_config(name)
    config = base_config(model.name)
    config.model.update(model.to_dict())
    set_config_arg(config.model, rest)
    config.data.resolution = 224
    config.train.epochs = 90.0
    return config
