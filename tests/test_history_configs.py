"""configs/history/: each historic recipe builds its model and trains two steps on tfds' mock imagenet2012,
and records the published result it should reproduce."""

import json
from pathlib import Path

import pytest
from helpers import mock_imagenet

from scaling.config.loading import load_config
from scaling.errors import ConfigError
from scaling.train import train_and_evaluate

# Tiny widths (ResNet-50: one block per stage) and 32 pixels keep the test quick; the full-size models'
# parameter and FLOP counts are tested in test_models and test_model_counts.
TINY = {
    "alexnet": ["model.width=4"],
    "vgg16": ["model.width=4"],
    "resnet50": ["model.width=4", "model.depth=14", "model.stage_sizes=(1,1,1,1)"],
    "vit_s16": ["model.width=16", "model.num_heads=2", "model.depth=2"],
}


@pytest.fixture(scope="module")
def imagenet_cache(tmp_path_factory) -> Path:
    """One image cache of the mock imagenet2012 for every recipe: the first builds it, the others read it (all take
    the same splits at 32 pixels with the same centre crop)."""
    return tmp_path_factory.mktemp("imagenet_cache")


@pytest.mark.parametrize("name", sorted(TINY))
def test_history_recipe_trains_two_steps_and_records_its_reference(name, imagenet_cache, tmp_path):
    config = load_config(f"configs/history/{name}.py", [
        *TINY[name], f"data.cache_dir={imagenet_cache}", "data.resolution=32", "data.pipeline=cache",
        "train.epochs=None", "train.steps=2", "train.batch_size=8", "train.eval_batch_size=16", "wandb.mode=disabled",
    ])
    assert config.data.name == "imagenet2012" and 0 < config.reference.top1_error < 0.5
    with mock_imagenet(48):
        result = train_and_evaluate(config, tmp_path / "run")
    assert result.status == "completed" and result.step == 2 and result.num_classes == 1000
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["reference"]
    assert recorded["name"] == config.reference.name and recorded["source"]


def test_cheap_variant_trains_on_your_imagenet2012_at_64_pixels_or_on_imagenet_resized():
    config = load_config("configs/history/resnet50.py:cheap", ["data.data_dir=/data/tfds"])
    assert (config.data.name, config.data.resolution, config.data.pipeline) == ("imagenet2012", 64, "cache")
    assert config.data.data_dir == "/data/tfds" and config.data.eval_crop_fraction == 0.875
    assert config.data.normalization == "imagenet" and config.model.stem == "imagenet"
    resized = load_config("configs/history/resnet50.py:cheap=imagenet_resized")
    assert (resized.data.name, resized.data.resolution, resized.data.eval_crop_fraction) == (
        "imagenet_resized/64x64", 64, 1.0)
    with pytest.raises(ConfigError, match="cheap=imagenet_resized"):
        load_config("configs/history/resnet50.py:cheap=imagenet_resized/32x32")

