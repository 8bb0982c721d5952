"""Scale-out of the tiny ResNet on the 8 virtual devices against one device: data-parallel, a preempted run resumed
on another mesh, the persistent compilation cache and divergence."""

from pathlib import Path

import numpy as np
import pytest
from helpers import SGD, assert_same_checkpoints, final_checkpoint_leaves, tiny_args, tiny_config, train_losses

from scaling.cli import main
from scaling.runtime.preemption import request_stop
from scaling.train import train_and_evaluate
from scaling.workdir.records import read_result
from scaling.workdir.tracking import read_metrics


@pytest.fixture(scope="module")
def resnet_one_device(digits_data_dir, tmp_path_factory) -> Path:
    """The tiny ResNet trained 3 sgd steps on one device, the first run to compile into a fresh cache of its own
    (`_resnet_cache`): the reference of the data-parallel and mesh-change tests, the compilation-cache test's first
    run."""
    root = tmp_path_factory.mktemp("resnet_one_device")
    train_and_evaluate(tiny_config("resnet", digits_data_dir, *_resnet_sgd(root / "xla")), root / "run")
    return root / "run"


def _resnet_sgd(cache: Path) -> list[str]:
    """The settings of `resnet_one_device`, compiling through `cache`."""
    return [*SGD, "mesh.data=1", f"train.compilation_cache_dir={cache}"]


def _resnet_cache(reference: Path) -> Path:
    """The compilation cache of `resnet_one_device`."""
    return reference.parent / "xla"


def test_data_parallel_step_matches_single_device(resnet_one_device, digits_data_dir, tmp_path):
    """Same global batch on 8 devices as on one."""
    train_and_evaluate(tiny_config("resnet", digits_data_dir, *SGD, "mesh.data=8"), tmp_path)
    np.testing.assert_allclose(train_losses(tmp_path), train_losses(resnet_one_device), rtol=1e-5)
    assert_same_checkpoints(tmp_path, resnet_one_device, rtol=1e-3, atol=5e-5)  # reduction order differs


def test_run_preempted_on_one_mesh_resumes_on_another(resnet_one_device, digits_data_dir, tmp_path, capsys):
    """README: "A run may resume on a different mesh". Preempted after step 1 on one device, resumed on fsdp=8
    from that checkpoint (its step-1 line kept, not retrained); its losses and final state are those of a run on
    one device throughout, so this is also ResNet's check that FSDP trains as one device does."""
    settings = _resnet_sgd(_resnet_cache(resnet_one_device))
    request_stop()  # as SIGTERM does: checkpoint and stop after the next step
    assert train_and_evaluate(tiny_config("resnet", digits_data_dir, *settings), tmp_path).status == "preempted"
    first_attempt = (tmp_path / "metrics.jsonl").read_text()
    assert [line["step"] for line in read_metrics(tmp_path)] == [1]
    capsys.readouterr()
    result = train_and_evaluate(tiny_config("resnet", digits_data_dir, *settings, "mesh.fsdp=8"), tmp_path)
    assert result.status == "completed" and result.step == 3 and result.num_devices == 8
    assert "resuming at step 1" in capsys.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_text().startswith(first_attempt)
    assert [line["step"] for line in read_metrics(tmp_path) if line["kind"] == "train"] == [1, 2, 3]
    np.testing.assert_allclose(train_losses(tmp_path), train_losses(resnet_one_device), rtol=2e-5)
    assert_same_checkpoints(tmp_path, resnet_one_device, rtol=1e-3, atol=5e-5)


def test_a_repeated_run_compiles_nothing_through_the_configured_cache(resnet_one_device, digits_data_dir, tmp_path):
    cache = _resnet_cache(resnet_one_device)
    assert read_result(resnet_one_device)["compilation_cache"]["misses"] > 0 and any(cache.iterdir())
    second = train_and_evaluate(tiny_config("resnet", digits_data_dir, *_resnet_sgd(cache)), tmp_path)
    assert second.compilation_cache["misses"] == 0 and second.compilation_cache["hits"] >= 3


def test_non_finite_loss_is_recorded_as_diverged_and_the_last_good_checkpoint_kept(
        resnet_one_device, digits_data_dir, tmp_path):
    """The learning rate warms up from 0 to 1e12 over 5 steps: two finite steps, then a non-finite loss (the
    run stops there, whatever its length)."""
    args = tiny_args("resnet", digits_data_dir, *_resnet_sgd(_resnet_cache(resnet_one_device)), "train.steps=10",
                     "train.checkpoint_every_steps=1", "optim.lr=1e12", "optim.warmup_fraction=0.5")
    assert main(["train", *args, "--workdir", str(tmp_path)]) == 1
    result = read_result(tmp_path)
    assert result["status"] == "diverged" and "non-finite at step" in result["error"]
    assert result["compute_dtype"] == "float32" and "compute_dtype" not in result["error"]  # auto on CPU: float32
    bad_step = result["step"]
    logged = [line for line in read_metrics(tmp_path) if line["kind"] == "train"]
    assert [line["step"] for line in logged] == list(range(1, bad_step))
    assert all(np.isfinite(line["train_loss"]) and np.isfinite(line["grad_norm"]) for line in logged)
    kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert kept[-1] == bad_step - 1
    assert all(np.isfinite(leaf).all() for leaf in final_checkpoint_leaves(tmp_path).values())
