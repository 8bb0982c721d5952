"""Scale-out on the 8 virtual devices: partition rules, data-parallel, FSDP and tensor-parallel meshes, bf16,
gradient accumulation, the dry run, the persistent compilation cache and divergence."""

from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import assert_same_checkpoints, final_checkpoint_leaves, tiny_args, tiny_config
from jax.sharding import PartitionSpec as P

from scaling.cli import main
from scaling.data import dataset_facts
from scaling.errors import ConfigError
from scaling.models import partition_rules, validate_model_config
from scaling.program.build import initializer
from scaling.program.optim import make_optimizer
from scaling.program.sharding import make_mesh, state_shardings
from scaling.runtime.preemption import request_stop
from scaling.train import train_and_evaluate
from scaling.workdir.records import read_result
from scaling.workdir.tracking import read_metrics

VIT = "configs/vit.py:width=16,depth=2,num_heads=2,patch_size=2"


def _train_losses(workdir) -> list[float]:
    return [line["train_loss"] for line in read_metrics(workdir) if line["kind"] == "train"]


def _layouts(config, digits_data_dir) -> dict[str, P]:
    facts = dataset_facts("digits", digits_data_dir)
    model = validate_model_config(config.model, image_shape=facts.image_shape, num_classes=facts.num_classes)
    _, _, initial_state, _ = initializer(model, make_optimizer(config.optim))
    abstract = jax.eval_shape(initial_state, np.int32(0))
    rules = partition_rules(config.model)
    shardings = state_shardings(make_mesh(config.mesh), abstract, config.mesh.fsdp_min_size, rules)
    flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
    return {jax.tree_util.keystr(path): leaf.spec for path, leaf in flat}


def test_partition_rules_split_vit_heads_and_mlp_and_fsdp_the_largest_divisible_dimension(digits_data_dir):
    config = tiny_config("vit", digits_data_dir, "mesh.data=1", "mesh.fsdp=4", "mesh.tensor=2",
                         "mesh.fsdp_min_size=100")
    specs = _layouts(config, digits_data_dir)

    def spec(suffix: str, state: str = "['params']") -> P:
        (value,) = [v for k, v in specs.items() if k.startswith(state) and k.endswith(suffix)]
        return value

    assert spec("[0]['attn']['qkv']['kernel']") == P("fsdp", None, "tensor", None)  # [16 width, 3, 2 heads, 8]
    assert spec("[0]['attn']['out']['kernel']") == P("tensor", None, "fsdp")  # [2 heads, 8, 16 width]
    assert spec("[0]['mlp_in']['kernel']") == P("fsdp", "tensor")  # [16, 64 hidden]
    assert spec("[0]['mlp_out']['kernel']") == P("tensor", "fsdp")  # [64 hidden, 16]
    assert spec("['head']['kernel']") == P("fsdp", None)  # [16, 10]: 10 does not divide by 4
    assert spec("[0]['mlp_in']['bias']") == P("tensor")  # 64 elements < fsdp_min_size: no fsdp
    assert spec("[0]['attn_norm']['scale']") == P(None)  # replicated
    # adam follows
    assert spec("[0]['attn']['qkv']['kernel']", "['opt_state'][0].mu") == P("fsdp", None, "tensor", None)
    assert spec(".count", "['opt_state']") == P()


def test_tensor_axis_without_rules_and_indivisible_heads_are_config_errors(digits_data_dir):
    with pytest.raises(ConfigError, match="the model's family declares no tensor-parallel rules"):
        _layouts(tiny_config("resnet", digits_data_dir, "mesh.data=4", "mesh.tensor=2"), digits_data_dir)
    with pytest.raises(ConfigError, match=r"mesh.tensor=4 does not divide"):
        _layouts(tiny_config("vit", digits_data_dir, "mesh.data=2", "mesh.tensor=4"), digits_data_dir)


# sgd: Adam magnifies float round-off in tiny gradients. The compiled step depends on neither the learning rate nor
# the run's length (scaling.program.optim), so runs that differ only in those share one program.
SGD = ("train.steps=3", "train.log_every_steps=1", "optim.name=sgd", "optim.lr=0.1", "mesh.fsdp_min_size=1")


@pytest.fixture(scope="module")
def vit_one_device(digits_data_dir, tmp_path_factory) -> Path:
    """The tiny ViT trained 3 sgd steps on one device: what the meshes, accumulation and bf16 must reproduce."""
    workdir = tmp_path_factory.mktemp("vit_one_device")
    train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, "mesh.data=1"), workdir)
    return workdir


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


def test_fsdp_and_tensor_parallel_meshes_match_a_single_device(vit_one_device, digits_data_dir, tmp_path):
    """Same global batch on one device and on FSDP / tensor-parallel meshes of 8. ResNet on fsdp=8 is checked the
    same way by test_run_preempted_on_one_mesh_resumes_on_another, where it takes over a run from one device."""
    for index, mesh in enumerate(["mesh.data=2,mesh.fsdp=4", "mesh.data=2,mesh.fsdp=2,mesh.tensor=2"]):
        workdir = tmp_path / f"mesh{index}"
        result = train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, *mesh.split(",")), workdir)
        assert result.status == "completed" and result.num_devices == 8
        np.testing.assert_allclose(_train_losses(workdir), _train_losses(vit_one_device), rtol=2e-5, err_msg=mesh)
        assert_same_checkpoints(workdir, vit_one_device, rtol=1e-3, atol=5e-5)


def test_data_parallel_step_matches_single_device(resnet_one_device, digits_data_dir, tmp_path):
    """Same global batch on 8 devices as on one."""
    train_and_evaluate(tiny_config("resnet", digits_data_dir, *SGD, "mesh.data=8"), tmp_path)
    np.testing.assert_allclose(_train_losses(tmp_path), _train_losses(resnet_one_device), rtol=1e-5)
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
    np.testing.assert_allclose(_train_losses(tmp_path), _train_losses(resnet_one_device), rtol=2e-5)
    assert_same_checkpoints(tmp_path, resnet_one_device, rtol=1e-3, atol=5e-5)


def test_bfloat16_compute_keeps_float32_state_and_tracks_float32_losses(vit_one_device, digits_data_dir, tmp_path):
    result = train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, "mesh.data=1",
                                            "train.compute_dtype=bfloat16"), tmp_path)
    assert result.compute_dtype == "bfloat16" and read_result(vit_one_device)["compute_dtype"] == "float32"
    low, full = _train_losses(tmp_path), _train_losses(vit_one_device)
    np.testing.assert_allclose(low, full, rtol=2e-2)
    assert low != full  # bf16 really computed in lower precision
    assert {leaf.dtype for leaf in final_checkpoint_leaves(tmp_path).values()} <= {
        np.dtype("float32"), np.dtype("int32")}


def test_gradient_accumulation_matches_the_large_batch(vit_one_device, digits_data_dir, tmp_path):
    train_and_evaluate(tiny_config("vit", digits_data_dir, *SGD, "mesh.data=1", "train.microbatches=4"), tmp_path)
    np.testing.assert_allclose(_train_losses(tmp_path), _train_losses(vit_one_device), rtol=1e-5)
    assert_same_checkpoints(tmp_path, vit_one_device, rtol=1e-3, atol=5e-5)


def test_microbatches_that_do_not_split_the_batch_are_rejected(digits_data_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"train.microbatches=3"):
        train_and_evaluate(tiny_config("vit", digits_data_dir, "train.steps=2", "train.microbatches=3"), tmp_path)


def test_dry_run_prints_memory_flops_and_layout_of_a_hand_count_without_training(digits_data_dir, tmp_path, capsys):
    """ViT width 512, one block, MLP 2048, 16 tokens of 2x2x1 patches, 10 classes, global average pooling:
    parameters 4*1*512 + 512 (patches) + 16*512 (positions) + 12*512^2 + 13*512 (block: q, k, v, out, MLP,
    their biases, two norms) + 2*512 (norm) + 512*10 + 10 (head); the train state is them three times (adam's
    mu and nu) in float32 plus adam's int32 count. Under fsdp=8 every array splits 8 ways but the head's
    10-element bias. Forward multiply-adds per example: 16 tokens x (4*1*512 patches + 4*512^2 projections +
    2*16*512 attention + 2*512*2048 MLP) + 512*10 head; a train step is 2 FLOPs each, 3 times (forward, backward)."""
    width, tokens, mlp, batch = 512, 16, 2048, 32
    params = 4 * width + width + tokens * width + 12 * width**2 + 13 * width + 2 * width + width * 10 + 10
    state = {"data=8": 3 * 4 * params + 4, "fsdp=8": 3 * 4 * (params - 10) // 8 + 3 * 4 * 10 + 4}
    macs = tokens * (4 * width + 4 * width**2 + 2 * tokens * width + 2 * width * mlp) + width * 10

    def dry_run(*overrides: str) -> str:
        args = [f"data.data_dir={digits_data_dir}", f"train.batch_size={batch}", "mesh.fsdp_min_size=1", *overrides]
        config = f"configs/vit.py:width={width},depth=1,num_heads=8,patch_size=2,pool=gap"
        assert main(["train", "--dry-run", "--config", config, *(f"--config.{arg}" for arg in args)]) == 0
        return capsys.readouterr().out

    def flops(out: str) -> float:
        return float(out.split("FLOPs per step: ")[1].split()[0])

    outs = {"data=8": dry_run("mesh.data=8"), "fsdp=8": dry_run("mesh.data=1", "mesh.fsdp=8")}
    for mesh, out in outs.items():
        assert f"{params:,} parameters" in out and f"mesh: data={8 if mesh == 'data=8' else 1}, fsdp=" in out
        assert "temporaries" in out and "float32 compute (train.compute_dtype=auto on cpu), float32 parameters" in out
        mib = float(out.split("memory per device: ")[1].split(" MiB train state")[0])
        assert abs(mib - state[mesh] / 2**20) <= 0.05, (mesh, mib)  # printed to 0.1 MiB: 36.3 and 4.5
        # XLA counts the matmuls exactly, plus the elementwise work (norms, GELU, softmax, adam): about 1% here
        assert 0.99 < flops(out) / (6 * macs * batch) < 1.05, flops(out) / (6 * macs * batch)
    accumulated = dry_run("mesh.data=1", "mesh.fsdp=8", "train.microbatches=2")
    assert flops(accumulated) == flops(outs["fsdp=8"])  # the whole batch, however split
    mlp_line = next(line for line in outs["fsdp=8"].splitlines() if "mlp_in/kernel" in line)
    assert mlp_line.endswith("(512, 2048)        -> (512, 256)         (None, 'fsdp')")  # largest dimension split
    assert not any(tmp_path.iterdir())


def test_dry_run_needs_no_prepared_dataset_only_its_tfds_definition(tmp_path, capsys):
    args = ["--config", VIT, "--config.data.name=imagenet2012", f"--config.data.data_dir={tmp_path}",
            "--config.mesh.fsdp=8", "--config.mesh.fsdp_min_size=1000", "--config.train.batch_size=16"]
    assert main(["train", "--dry-run", *args, "--config.data.resolution=16"]) == 0
    out = capsys.readouterr().out
    assert "(16, 16, 3) images, 1000 classes (imagenet2012, not prepared here)" in out
    assert "head/kernel" in out and "(16, 1000)" in out and "-> (16, 125)" in out
    # images of varying size: ImageNet's are 224 px unless data.resolution says otherwise; others must say it
    assert tiny_config("vit", str(tmp_path), "data.name=imagenet2012").data.resolution == 224
    assert main(["train", "--dry-run", *args, "--config.data.name=oxford_flowers102"]) == 2
    assert "data.resolution" in capsys.readouterr().err


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
