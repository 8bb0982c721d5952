"""What a user types, wrong: broken config and sweep files, out-of-range optimizer settings, a compute budget
below one step, an empty grid and an unreachable Slurm; each is one `error:` line (exit 2) before compiling."""

import json
import re
import stat
from pathlib import Path

import pytest
from helpers import TINY_MODELS, tiny_args

from scaling.cli import main
from scaling.config.defaults import FIELDS
from scaling.config.loading import load_config, parse_value, to_json_dict
from scaling.config.validation import num_train_steps
from scaling.errors import ConfigError
from scaling.schema import is_valid
from scaling.sweep.slurm import check_slurm, run_slurm  # here, not in a test: submitit logs to its import's stderr
from scaling.sweep.slurm_options import SlurmOptions
from scaling.sweep.spec import SweepPoint
from scaling.workdir.records import check_config

REPO = Path(__file__).resolve().parents[1]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr's only line, which must be the `error:` line."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("source, expected", [
    ("x = 1\n\ndef get_config(arg=None)\n    return x\n", ["has a Python syntax error at line 3"]),
    ("import os\nraise RuntimeError('no quota left')\n",
     ["raised RuntimeError at line 2 (while being imported): no quota left"]),
    ("def get_config(arg=None):\n    knobs = {}\n    return knobs['width']\n",
     ["raised KeyError at line 3 (in get_config()): 'width'"]),
    ("def get_config(arg=None):\n    return {'model': {'width': 4}}\n",
     ["get_config() in", "must return an ml_collections.ConfigDict", "got a dict"]),
    ("import ml_collections\n\ndef get_config(arg=None):\n    return ml_collections.ConfigDict({'seed': 0})\n",
     ["returns a config without", "data.name", "base_config"]),
])
def test_broken_config_file_is_one_error_naming_the_file(source, expected, tmp_path, capsys):
    path = tmp_path / "my_config.py"
    path.write_text(source)
    assert main(["train", "--config", str(path), "--workdir", str(tmp_path / "run")]) == 2
    line = _error_line(capsys)
    assert str(path) in line
    for text in expected:
        assert text in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, expected", [("config.json", "is not a Python file"), ("configs", "is a folder")])
def test_config_path_that_is_not_a_python_file(name, expected, tmp_path, capsys):
    path = tmp_path / name
    path.mkdir() if name == "configs" else path.write_text("{}")
    assert main(["train", "--config", str(path), "--workdir", str(tmp_path / "run")]) == 2
    line = _error_line(capsys)
    assert str(path) in line and expected in line and "configs/<name>.py" in line


@pytest.mark.parametrize("source, expected", [
    ("CONFIG = 'configs/resnet.py'\ndef get_grid()\n    return []\n", "has a Python syntax error at line 2"),
    ("CONFIG = 'configs/resnet.py'\nimport missing_module_of_the_user\n",
     "raised ModuleNotFoundError at line 2 (while being imported): No module named 'missing_module_of_the_user'"),
    ("CONFIG = 'configs/resnet.py'\n\ndef get_grid():\n    return [{'seed': s} for s in range(3)][5]\n",
     "raised IndexError at line 4 (in get_grid()): list index out of range"),
    ("CONFIG = 'configs/resnet.py'\n\ndef get_grid():\n    return {'model.width': [8, 16]}\n",
     "must return a list of override dicts"),
])
def test_broken_sweep_file_is_one_error_naming_the_file(source, expected, tmp_path, capsys):
    path = tmp_path / "my_sweep.py"
    path.write_text(source)
    assert main(["sweep", "show", str(path)]) == 2
    line = _error_line(capsys)
    assert str(path) in line and expected in line


def test_empty_grid_warns_that_the_sweep_has_no_points(tmp_path, capsys):
    path = tmp_path / "empty.py"
    path.write_text("NAME = 'nothing'\nCONFIG = 'configs/resnet.py'\n\ndef get_grid():\n    return []\n")
    for argv in (["sweep", "show", str(path)], ["sweep", "run", str(path), "--root", str(tmp_path / "root")]):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert err.splitlines() == [f"warning: sweep nothing has no points: get_grid() in {path} returned []"]
        assert "0 runs" in out


@pytest.mark.parametrize("override, expected", [
    ("optim.momentum=1.0", "optim.momentum must be a number in [0, 1) (sgd momentum and adamw beta1, e.g. 0.9), "
                           "got 1.0"),
    ("optim.momentum=-0.1", "optim.momentum must be a number in [0, 1)"),
    ("optim.beta2=1.0", "optim.beta2 must be a number in [0, 1) (adamw beta2, e.g. 0.999), got 1.0"),
    ("optim.beta1=0.95", "unknown key 'optim.beta1': the config calls it optim.momentum; "
                         "use --config.optim.momentum=0.95"),
])
def test_optimizer_betas_outside_zero_one(override, expected, digits_data_dir, tmp_path, capsys):
    args = ["train", *tiny_args("resnet", digits_data_dir, "train.steps=2", override), "--workdir", str(tmp_path)]
    assert main(args) == 2
    assert expected in _error_line(capsys)
    assert not (tmp_path / "checkpoints").exists()
    rule = FIELDS["optim.momentum"].rule
    assert is_valid(0.0, rule) and is_valid(0.999, rule) and not is_valid(1.0, rule)


def test_flops_budget_below_one_step_names_the_step_cost(digits_data_dir, tmp_path, capsys):
    # The tiny ViT on the 8x8 digits (TINY_MODELS): 16 tokens of 2x2 patches, width 16, MLP 64, 2 heads of 8,
    # 2 blocks, average pooling, 10 classes. Forward multiply-adds per image, by hand:
    tokens, width, mlp, classes, depth = 16, 16, 64, 10, 2
    embed = tokens * (2 * 2 * 1) * width
    block = tokens * width * 4 * width + 2 * tokens * tokens * width + 2 * tokens * width * mlp
    macs = embed + depth * block + width * classes
    batch = 32
    matmul_step = 3 * 2 * macs * batch  # training = 3 x forward; 1 multiply-add = 2 FLOPs
    assert TINY_MODELS["vit"] == "configs/vit.py:width=16,depth=2,num_heads=2,patch_size=2"
    args = ["train", *tiny_args("vit", digits_data_dir, f"train.flops={matmul_step}"), "--workdir", str(tmp_path)]
    assert main(args) == 2
    line = _error_line(capsys)
    match = re.search(r"train\.flops=(\S+) is less than one training step costs: (\d+) FLOPs \((\d+) per example "
                      r"x train\.batch_size=32\); raise train\.flops to at least \2", line)
    assert match, line
    step, per_example = int(match[2]), int(match[3])
    # XLA also counts norms, softmax and GELU: a little above the matmuls, never below
    assert matmul_step <= step <= 1.25 * matmul_step and abs(step - per_example * batch) <= batch


def test_flops_budget_of_exactly_one_step_is_one_step():
    config = load_config("configs/resnet.py", ["train.epochs=None", "train.batch_size=64"])
    config.train.flops = 64 * 1e5
    assert num_train_steps(config, train_examples=1000, flops_per_example=1e5) == 1
    config.train.flops = 64 * 1e5 - 1
    with pytest.raises(ConfigError, match=r"train.flops=6\.4e\+06 is less than one training step costs: 6400000 "):
        num_train_steps(config, train_examples=1000, flops_per_example=1e5)


def _sweep_file(tmp_path: Path, data_dir: str) -> Path:
    """A one-point sweep of the tiny ResNet on the digits."""
    args = tiny_args("resnet", data_dir, "train.steps=2")
    items = (arg.removeprefix("--config.").split("=", 1) for arg in args[2:])
    overrides = {key: parse_value(text) for key, text in items}
    path = tmp_path / "one.py"
    path.write_text(f"CONFIG = {str(REPO / args[1])!r}\nOVERRIDES = {overrides!r}\n\n"
                    "def get_grid():\n    return [{'seed': 0}]\n")
    return path


def _commands(folder: Path, **scripts: str) -> Path:
    """A folder of executable shell scripts standing in for Slurm's commands."""
    folder.mkdir()
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return folder


def test_slurm_launcher_without_slurm_commands(digits_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(_commands(tmp_path / "bin")))
    root = tmp_path / "root"
    assert main(["sweep", "run", str(_sweep_file(tmp_path, digits_data_dir)), "--root", str(root),
                 "--launcher", "slurm"]) == 2
    line = _error_line(capsys)
    assert "needs Slurm's sbatch, srun, sinfo, not found on PATH" in line
    assert "`sinfo`" in line and "--launcher local" in line
    assert not (root / ".submitit").exists()


def test_slurm_launcher_with_an_unreachable_controller_submits_nothing(digits_data_dir, tmp_path, capsys,
                                                                       monkeypatch):
    submitted = tmp_path / "submitted"
    refusal = "slurm_load_partitions: Unable to contact slurm controller (connect failure)"
    commands = _commands(tmp_path / "bin", sbatch=f"touch {submitted}", srun="exit 0",
                         sinfo=f"echo '{refusal}' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{commands}:{Path('/bin')}")
    assert main(["sweep", "run", str(_sweep_file(tmp_path, digits_data_dir)), "--root", str(tmp_path / "root"),
                 "--launcher", "slurm"]) == 2
    line = _error_line(capsys)
    assert f"the Slurm controller cannot be reached: `sinfo` failed ({refusal})" in line
    assert "--launcher local" in line
    assert not submitted.exists()


def test_slurm_partition_must_be_one_that_sinfo_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(_commands(tmp_path / "bin", sbatch="exit 0", srun="exit 0",
                                             sinfo="echo 'debug*'; echo gpu")))
    check_slurm("gpu")
    with pytest.raises(ConfigError, match=r"^--partition cpu is not a Slurm partition here; `sinfo` lists debug, gpu$"):
        check_slurm("cpu")


def test_sbatch_refusing_the_array_is_one_error(tmp_path, monkeypatch):
    refusal = "sbatch: error: Batch job submission failed: Requested node configuration is not available"
    commands = _commands(tmp_path / "bin", srun="exit 0", sinfo="echo debug", sbatch=f"echo '{refusal}' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{commands}:{Path('/bin')}")
    point = SweepPoint("refused", "point-0", "configs/resnet.py", ())
    with pytest.raises(ConfigError, match=rf"^sbatch refused the sweep's job array: {refusal}; check --partition, "):
        run_slurm([point], tmp_path / "root", SlurmOptions(gpus_per_node=8))


def test_a_workdir_written_before_a_key_existed_resumes_but_a_changed_value_is_refused(tmp_path):
    """config.json of an older version lacks keys added since (data.synthetic): they count as their defaults, so the
    run resumes; a key that differs in value still stops it, naming the key."""
    config = to_json_dict(load_config("configs/resnet.py", []))
    older = json.loads(json.dumps(config))
    del older["data"]["synthetic"]
    (tmp_path / "config.json").write_text(json.dumps(older))
    check_config(tmp_path, config)
    older["optim"]["lr"] = config["optim"]["lr"] * 2
    (tmp_path / "config.json").write_text(json.dumps(older))
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        check_config(tmp_path, config)


def test_a_vit_workdir_from_before_fused_qkv_resumes_with_the_layout_it_was_trained_in(tmp_path):
    """A ViT run recorded before model.fused_qkv existed computed q, k and v separately: resuming it needs
    fused_qkv=False (its checkpoint's layout), and the new default (fused) is refused naming the knob."""
    config = to_json_dict(load_config(TINY_MODELS["vit"], ["model.fused_qkv=False"]))
    older = json.loads(json.dumps(config))
    for knob in ("attention", "fused_qkv", "scan_blocks", "remat"):
        del older["model"][knob]
    (tmp_path / "config.json").write_text(json.dumps(older))
    check_config(tmp_path, config)
    with pytest.raises(ConfigError, match=r"model\.fused_qkv: False there, True now"):
        check_config(tmp_path, to_json_dict(load_config(TINY_MODELS["vit"], [])))


def test_randaugment_groups_that_do_not_divide_the_batch_stop_before_compiling(digits_data_dir, tmp_path, capsys):
    args = tiny_args("resnet", digits_data_dir, "train.steps=2", "data.augment.randaugment_ops=2",
                     "data.augment.randaugment_groups=3")
    assert main(["train", *args, "--workdir", str(tmp_path / "w")]) == 2
    assert capsys.readouterr().err == ("error: data.augment.randaugment_groups=3 does not divide the batch of 32; set "
                                       "it to a divisor of the batch (or 0: automatic)\n")
    assert not (tmp_path / "w" / "config.json").exists()
