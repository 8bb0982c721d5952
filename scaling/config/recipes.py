"""Historic ImageNet recipes (configs/history/): a named architecture on ImageNet with its original
optimizer and schedule, and the published result it should reproduce as a top-level `reference`
(read by `scaling history compare`). The argument `cheap` trains on 64-pixel images instead: your prepared
imagenet2012 resized to 64 px and cached (`cheap`), or tfds' imagenet_resized/64x64 (`cheap=imagenet_resized`,
which tfds downloads). config.json and result.json record the dataset and resolution a run used."""

from __future__ import annotations

import ml_collections

from scaling.config.defaults import base_config
from scaling.errors import ConfigError
from scaling.models import variant_config

CHEAP = {  # argument -> (data.name, data.resolution, data.eval_crop_fraction): 64-pixel ImageNet from the cache
    "cheap": ("imagenet2012", 64, 0.875),
    "cheap=imagenet_resized": ("imagenet_resized/64x64", 64, 1.0),  # whole images already downsampled
}


def historic_recipe(variant: str, arg: str | None, reference: dict) -> ml_collections.ConfigDict:
    """ImageNet at 224 pixels, streamed with inception crops and flips; `cheap`: 64-pixel ImageNet from the cache
    (imagenet2012 resized, or `cheap=imagenet_resized`: imagenet_resized/64x64)."""
    if arg not in (None, "", *CHEAP):
        raise ConfigError(
            "history configs take no argument or 'cheap' (your prepared imagenet2012 resized to 64 px; "
            f"'cheap=imagenet_resized': imagenet_resized/64x64, downloaded by tfds), got {arg!r}"
        )
    model = variant_config(variant)
    config = base_config(model.name)
    config.model.update(model.to_dict())
    config.data.name = "imagenet2012"
    config.data.resolution = 224
    config.data.pipeline = "stream"
    config.data.eval_crop_fraction = 0.875  # resize to 256, central 224 crop
    config.data.augment.inception_crop = True
    config.data.augment.flip = True
    if arg in CHEAP:
        config.data.name, config.data.resolution, config.data.eval_crop_fraction = CHEAP[arg]
        config.data.pipeline = "cache"
    config.train.eval_every_steps = 5000
    config.train.checkpoint_every_steps = 2000
    config.wandb.group = "history"
    with config.unlocked():
        config.reference = ml_collections.ConfigDict(reference)
    return config
