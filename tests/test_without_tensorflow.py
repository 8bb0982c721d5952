"""The scaling package where TensorFlow, tfds, wandb, submitit, scikit-learn, matplotlib, pyarrow and array_record are
not installed (as in a GPU image): every module but the tfds builder of `digits` and the Slurm launcher imports, the
command line answers, a run on the synthetic dataset dry-runs and trains, and a tfds dataset is one error line
naming what to install. One subprocess, the scaling commands called in it."""

import json
import sys
from pathlib import Path

from helpers import NOT_IN_ACCELERATOR_IMAGES, run_without

SCRIPT = r"""
import contextlib, importlib, io, json, os, pkgutil, sys

import scaling
from scaling.cli import main

failed = {}
for module in pkgutil.walk_packages(scaling.__path__, "scaling."):
    try:
        importlib.import_module(module.name)
    except Exception as error:
        failed[module.name] = type(error).__name__


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:
            code = exit.code
    return code, out.getvalue(), err.getvalue()


workdir, config, *overrides = sys.argv[1:]
synthetic = ["--config", config, *overrides]
print(json.dumps({
    "failed": failed, "help": run("--help"), "models": run("models", "list"),
    "dry_run": run("train", "--dry-run", *synthetic), "train": run("train", "--workdir", workdir, *synthetic),
    "tfds": run("train", "--workdir", workdir + "-digits", "--config", config,
                *(item for item in overrides if not item.startswith("--config.data.name="))),
}))
"""


def test_scaling_imports_and_trains_on_synthetic_data_without_tensorflow_wandb_or_submitit(tmp_path) -> None:
    workdir = tmp_path / "run"
    overrides = ["data.name=synthetic", "wandb.mode=disabled", "data.resolution=8", "data.synthetic.classes=4",
                 "data.synthetic.train_examples=64", "data.synthetic.eval_examples=32", "train.epochs=None",
                 "train.steps=2", "train.batch_size=16", "train.eval_batch_size=16"]
    done = run_without(NOT_IN_ACCELERATOR_IMAGES, [sys.executable, "-c", SCRIPT, str(workdir),
                                                   "configs/resnet.py:width=4,depth=10",
                                                   *(f"--config.{item}" for item in overrides)],
                       cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["failed"] == {"scaling.data.digits": "ModuleNotFoundError", "scaling.sweep.slurm": "ConfigError"}
    assert results["help"][0] == 0 and "usage: scaling" in results["help"][1]
    assert results["models"][0] == 0 and "resnet50" in results["models"][1]
    code, out, err = results["dry_run"]
    assert code == 0, err
    assert "(8, 8, 3) images, 4 classes (synthetic, generated in host memory: at most 96 x 8x8x3" in out
    code, _, err = results["train"]
    assert code == 0, err
    result = json.loads((workdir / "result.json").read_text())
    assert (result["status"], result["dataset"], result["step"], result["resolution"]) == ("completed", "synthetic",
                                                                                            2, 8)
    code, _, err = results["tfds"]  # data.name left at its default, the tfds dataset `digits`
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: the dataset 'digits' is read through tfds") and \
        "pip install tensorflow-datasets tensorflow-cpu" in err
