"""Config files, their argument, overrides and validation: each bad case names its field."""

import pytest

from scaling.config.defaults import FIELDS, base_config
from scaling.config.loading import apply_override, load_config, parse_config_arg
from scaling.config.validation import num_train_steps, validate_config
from scaling.data import DatasetFacts
from scaling.errors import ConfigError
from scaling.schema import check_fields, check_value

DIGITS = DatasetFacts(name="digits", num_classes=10, image_shape=(8, 8, 1), split_sizes={"train": 1437, "test": 360})


def test_config_file_argument_and_overrides_set_typed_values():
    config = load_config("configs/resnet.py:width=24,depth=14",
                         ["optim.lr=3e-3", "train.epochs=2", "data.train_examples=400"])
    assert (config.model.width, config.model.depth) == (24, 14)
    assert config.optim.lr == pytest.approx(3e-3)
    assert config.train.epochs == 2.0 and isinstance(config.train.epochs, float)
    assert config.data.train_examples == 400


def test_tuple_override_on_an_unset_field():
    config = load_config("configs/resnet.py", ["model.stage_sizes=(1,2,1,1)", "model.depth=None"])
    assert tuple(config.model.stage_sizes) == (1, 2, 1, 1)


@pytest.mark.parametrize(
    "override, field",
    [("optim.lrr=1", "lrr"), ("trian.steps=3", "trian"), ("model.widht=3", "widht"), ("optim.lr=fast", "optim.lr")],
)
def test_unknown_or_mistyped_override_names_the_field(override, field):
    config = load_config("configs/resnet.py")
    with pytest.raises(ConfigError, match=field):
        apply_override(config, override)


def test_unknown_config_argument_key_is_an_error():
    with pytest.raises(ConfigError, match="dpeth"):
        parse_config_arg("dpeth=3", depth=10, width=16)


def test_missing_config_file_is_an_error():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("configs/nope.py")


def _validated(*overrides: str) -> None:
    validate_config(load_config("configs/resnet.py", list(overrides)), DIGITS)


def test_default_configs_are_valid():
    _validated()
    validate_config(load_config("configs/vit.py"), DIGITS)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.name=resnt"], "model.name"),
        (["model.width=0"], "model.width"),
        (["model.width=-4"], "model.width"),
        (["data.train_examples=5000"], "data.train_examples"),
        (["data.train_examples=0"], "data.train_examples"),
        (["train.batch_size=100"], "train.batch_size"),
        (["train.eval_batch_size=20"], "train.eval_batch_size"),
        (["train.steps=10"], "exactly one of train.steps"),
        (["train.epochs=None"], "exactly one of train.steps"),
        (["optim.name=adam"], "optim.name"),
        (["optim.schedule=exponential"], "optim.schedule"),
        (["optim.lr=0"], "optim.lr"),
        (["data.eval_split=validation"], "data.eval_split"),
        (["mesh.data=16"], "mesh.data"),
        (["mesh.fsdp=3"], "mesh.fsdp=3"),
        (["mesh.fsdp=-1"], "at most one -1"),
        (["mesh.data=2", "mesh.fsdp=2", "train.batch_size=130"], "train.batch_size"),
        (["train.microbatches=3"], "train.microbatches"),
        (["train.compute_dtype=float16"], "train.compute_dtype"),
        (["wandb.mode=cloud"], "wandb.mode"),
        (["data.pipeline=bogus"], "data.pipeline"),
        (["data.augment.min_area=0.0"], "data.augment.min_area"),
        (["mesh.fsdp=0"], "mesh.fsdp"),
        (["train.eval_every_steps=-1"], "train.eval_every_steps"),
        (["train.keep_checkpoint_fractions=(0.5,2)"], "train.keep_checkpoint_fractions"),
        (["train.branch_fraction=0.5"], "train.branch_from and train.branch_fraction together"),
        (["seed=-1"], "seed"),
    ],
)
def test_bad_config_fails_naming_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _validated(*overrides)


@pytest.mark.parametrize("model", ["resnet", "vit", "bit", "alexnet", "vgg", "convnext"])
def test_every_default_follows_its_rule(model):
    config = base_config(model)
    check_fields(config, FIELDS)
    assert config.data.eval_split is None and config.train.epochs is None  # None defaults are typed placeholders
    config.train.epochs = 2
    assert isinstance(config.train.epochs, float)


def test_schema_errors_name_the_field_what_it_must_be_and_the_value():
    check_value("a.b", None, "int|None")
    check_value("a.b", "gap", ("cls", "gap"))
    cases = [
        ("int|None", 0, "None: all", "a.b must be a positive integer or None (None: all), got 0"),
        (("cls", "gap", "max"), "avg", "", "a.b must be one of 'cls', 'gap' or 'max', got 'avg'"),
        ("portions", (0.5, 1.5), "", "a.b must be a sequence of numbers in (0, 1], got (0.5, 1.5)"),
        ("count", True, "", "a.b must be an integer >= 0, got True"),
    ]
    for rule, value, note, message in cases:
        with pytest.raises(ConfigError) as info:
            check_value("a.b", value, rule, note)
        assert str(info.value) == message


def test_durations_in_steps_examples_and_epochs():
    config = load_config("configs/resnet.py", ["train.epochs=None", "train.batch_size=64"])
    cases = [("steps", 7, 7), ("examples", 640, 10), ("examples", 641, 11), ("epochs", 2.0, 32), ("flops", 64e6, 10)]
    for key, value, steps in cases:
        config.train[key] = value
        assert num_train_steps(config, train_examples=1000, flops_per_example=1e5) == steps
        config.train[key] = None
