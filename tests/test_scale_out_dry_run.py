"""`scaling train --dry-run` on the 8 virtual devices: memory, FLOPs and layout against a hand count, without
training; a dataset's tfds definition is all it needs."""

from helpers import TINY_MODELS, tiny_config

from scaling.cli import main


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
    args = ["--config", TINY_MODELS["vit"], "--config.data.name=imagenet2012", f"--config.data.data_dir={tmp_path}",
            "--config.mesh.fsdp=8", "--config.mesh.fsdp_min_size=1000", "--config.train.batch_size=16"]
    assert main(["train", "--dry-run", *args, "--config.data.resolution=16"]) == 0
    out = capsys.readouterr().out
    assert "(16, 16, 3) images, 1000 classes (imagenet2012, not prepared here)" in out
    assert "head/kernel" in out and "(16, 1000)" in out and "-> (16, 125)" in out
    # images of varying size: ImageNet's are 224 px unless data.resolution says otherwise; others must say it
    assert tiny_config("vit", str(tmp_path), "data.name=imagenet2012").data.resolution == 224
    assert main(["train", "--dry-run", *args, "--config.data.name=oxford_flowers102"]) == 2
    assert "data.resolution" in capsys.readouterr().err
