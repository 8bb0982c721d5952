"""The `scaling` command: help, records in the workdir, wandb resume, and clear errors before compiling."""

import json

import pytest
from helpers import tiny_args

from scaling.cli import main


def test_help_explains_the_train_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--config", "--workdir", "--wandb", "--config.KEY=VALUE", "resumes"):
        assert option in text


def test_train_writes_records_and_a_rerun_of_the_completed_run_is_a_no_op(digits_data_dir, tmp_path, capsys):
    args = ["train", *tiny_args("resnet", digits_data_dir, "train.steps=10", "train.log_every_steps=5",
                                "train.eval_every_steps=5"), "--workdir", str(tmp_path), "--wandb", "offline"]
    assert main(args) == 0
    assert "examples/s" in capsys.readouterr().err
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["width"] == 4 and config["train"]["steps"] == 10
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line["kind"]) for line in lines] == [(5, "train"), (5, "eval"), (10, "train"), (10, "eval")]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "completed" and result["examples_seen"] == 320
    assert result["compute"] == pytest.approx(result["flops_per_example"] * 320)
    assert 0.0 <= result["final_eval"]["top5_error"] <= result["final_eval"]["top1_error"] <= 1.0
    run_id = (tmp_path / "wandb_run_id").read_text()
    assert any(path.name.endswith(run_id) for path in (tmp_path / "wandb").iterdir())

    records = {name: (tmp_path / name).read_bytes() for name in ("metrics.jsonl", "result.json", "wandb_run_id")}
    assert main(args) == 0  # already completed: nothing trained, evaluated or logged again
    assert "already completed at step 10" in capsys.readouterr().err
    assert {name: (tmp_path / name).read_bytes() for name in records} == records


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.widht=4"], "unknown key 'widht'"),
        (["model.name=alexnett"], "model.name"),
        (["model.width=0"], "model.width"),
        (["data.train_examples=100000"], "data.train_examples=100000"),
        (["train.batch_size=36"], "train.batch_size=36"),
        (["optim.schedule=bogus"], "optim.schedule must be one of 'cosine', 'linear'"),
        (["train.compute_dtype=fp8"], "train.compute_dtype must be one of 'auto', 'float32' or 'bfloat16' (auto: "
                                       "bfloat16 on GPU and TPU, float32 on CPU), got 'fp8'"),
        (["data.pipeline=bogus"], "data.pipeline must be one of 'cache' or 'stream', got 'bogus'"),
        (["data.augment.mixup_alpha=-1.0"], "data.augment.mixup_alpha must be a number >= 0 (0: off), got -1.0"),
    ],
)
def test_bad_config_exits_with_a_message_before_compiling(overrides, message, digits_data_dir, tmp_path, capsys):
    args = ["train", *tiny_args("resnet", digits_data_dir, "train.steps=2", *overrides), "--workdir", str(tmp_path)]
    assert main(args) == 2
    assert message in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "config, message",
    [
        ("configs/history/resnet50.py:foo", "history configs take no argument or 'cheap'"),
        ("configs/resnet.py:stage_sizes=abc", "config argument stage_sizes='abc' has the wrong type"),
        ("configs/resnet.py:depth=deep", "depth expects a int"),
        ("configs/vit.py:widht=8", "unknown key 'widht' in config argument"),
        ("configs/model.py:variant=resnet5", "unknown model variant 'resnet5'"),
    ],
)
def test_bad_config_file_argument_exits_with_one_error_line(config, message, tmp_path, capsys):
    assert main(["train", "--config", config, "--workdir", str(tmp_path)]) == 2
    assert message in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "body, message",
    [
        ('def get_grid():\n    return zipped(sweep("model.width", [4, 8]), sweep("model.depth", [10]))\n',
         "zipped grids must have equal lengths"),
        ('def get_grid():\n    return product(sweep("model.width", [4]), sweep("model.width", [8]))\n', "swept twice"),
        ('def get_grid():\n    return {"model.width": 4}\n', "must return a list of override dicts"),
        ('def get_grid():\n    return [("model.width", 4)]\n', "must be dicts of config overrides"),
        ('PACK_SIZE = 0\ndef get_grid():\n    return sweep("model.width", [4])\n', "PACK_SIZE in"),
        ('COOLDOWN_FRACTIONS = (0.5, "end")\ndef get_grid():\n    return sweep("model.width", [4])\n',
         "COOLDOWN_FRACTIONS in"),
    ],
)
def test_bad_sweep_file_exits_with_one_error_line(body, message, tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text(f'from scaling.sweep import product, sweep, zipped\nCONFIG = "configs/resnet.py"\n{body}')
    assert main(["sweep", "show", str(path)]) == 2
    assert message in _error_line(capsys.readouterr().err)


def _error_line(stderr: str) -> str:
    """The one `error:` line of a refused command (and no traceback)."""
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return line


def test_different_config_in_an_existing_workdir_is_refused(digits_data_dir, tmp_path, capsys):
    assert main(["train", *tiny_args("resnet", digits_data_dir, "train.steps=2"), "--workdir", str(tmp_path)]) == 0
    assert main(["train", *tiny_args("resnet", digits_data_dir, "train.steps=3"), "--workdir", str(tmp_path)]) == 2
    assert "train.steps: 2 there, 3 now" in capsys.readouterr().err
