"""train.compute_dtype: "auto" decided on the run's devices, bf16 matmuls and convolutions in the lowered train
step with float32 state, the MFU reference peak whatever the compute dtype, and the dtype in the results table."""

import json
import re
from types import SimpleNamespace

import jax
import numpy as np
import pandas as pd
import pytest
from helpers import tiny_config

from analysis.table.workdirs import read_workdirs
from scaling.models import validate_model_config
from scaling.program.build import build_program
from scaling.program.steps import StepInputs
from scaling.runtime import devices
from scaling.runtime.devices import mfu_peak, resolved_compute_dtype

H100 = SimpleNamespace(platform="gpu", device_kind="NVIDIA H100 80GB HBM3")
A100 = SimpleNamespace(platform="gpu", device_kind="NVIDIA A100-SXM4-80GB")
TPU_V4 = SimpleNamespace(platform="tpu", device_kind="TPU v4")


def test_auto_is_bfloat16_on_gpu_and_tpu_and_float32_on_cpu_and_the_config_keeps_auto(digits_data_dir) -> None:
    assert resolved_compute_dtype("auto", jax.devices()[0]) == "float32"
    assert resolved_compute_dtype("auto", H100) == resolved_compute_dtype("auto", TPU_V4) == "bfloat16"
    assert resolved_compute_dtype("float32", H100) == "float32"  # an explicit setting is kept on any device
    assert resolved_compute_dtype("bfloat16", jax.devices()[0]) == "bfloat16"
    assert tiny_config("resnet", digits_data_dir).train.compute_dtype == "auto"  # not decided at config load


def test_the_mfu_peak_is_the_bfloat16_peak_whatever_the_compute_dtype(tmp_path, monkeypatch) -> None:
    # NVIDIA and Google datasheets, dense bf16 (the A100's float32 TF32 peak is half of it: 156 TFLOP/s)
    assert mfu_peak(H100) == 989e12 and mfu_peak(A100) == 312e12 and mfu_peak(TPU_V4) == 275e12
    # a CPU has no bf16 spec: the better of its float32 and bfloat16 probes, each measured once and cached
    for probes in ({"float32": 3e9, "bfloat16": 5e9}, {"float32": 7e9, "bfloat16": 2e9}):
        monkeypatch.setenv("SCALING_CACHE_DIR", str(tmp_path / str(probes["float32"])))
        monkeypatch.setattr(devices, "measure_cpu_peak", lambda found, dtype, probes=probes: probes[dtype])
        assert mfu_peak(jax.devices()[0]) == max(probes.values())


# `%3 = stablehlo.dot_general %1, %2, ... : (tensor<1x32x16xbf16>, tensor<1x16x10xbf16>) -> tensor<1x32x10xbf16>`
OPERATION = re.compile(r"stablehlo\.(dot_general|convolution)\b.*:\s*\(tensor<([^>]*)>,\s*tensor<([^>]*)>\)\s*->")


@pytest.mark.parametrize("family", ["resnet", "vit"])
def test_under_bfloat16_every_dot_and_convolution_of_the_train_step_is_bfloat16(family, digits_data_dir) -> None:
    config = tiny_config(family, digits_data_dir, "train.compute_dtype=bfloat16", "train.steps=1")
    image_shape = (8, 8, 1)  # the digits'
    program = build_program(config, validate_model_config(config.model, image_shape=image_shape, num_classes=10))
    assert program.compute_dtype == "bfloat16"
    state = jax.tree.map(lambda leaf, where: jax.ShapeDtypeStruct((1, *leaf.shape), leaf.dtype, sharding=where),
                         program.abstract_state, program.packed_shardings)
    inputs = StepInputs.abstract(program.mesh, 1, config.train.batch_size, image_shape)
    text = program.train_step.lower(state, inputs).as_text()
    found = [match.groups() for match in OPERATION.finditer(text)]
    # every operation was parsed (none slips through unread), and there are both kinds, forward and backward
    assert len(found) == text.count("stablehlo.dot_general") + text.count("stablehlo.convolution")
    kinds = [kind for kind, _, _ in found]
    assert kinds.count("convolution") >= 2 and kinds.count("dot_general") >= 3, kinds
    operand_types = {(kind, lhs.split("x")[-1], rhs.split("x")[-1]) for kind, lhs, rhs in found}
    assert operand_types == {("convolution", "bf16", "bf16"), ("dot_general", "bf16", "bf16")}, operand_types
    held = {leaf.dtype for part in ("params", "opt_state") for leaf in jax.tree.leaves(program.abstract_state[part])}
    assert held <= {np.dtype("float32"), np.dtype("int32")} and np.dtype("float32") in held  # int32: adam's count


def test_the_results_table_has_the_compute_dtype_and_reads_results_without_it(tmp_path) -> None:
    for name, extra in [("new", {"compute_dtype": "bfloat16"}), ("old", {})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps({"status": "completed", "step": 3, **extra}))
    table = read_workdirs(tmp_path).set_index("run_id")
    assert table.loc["new", "compute_dtype"] == "bfloat16" and pd.isna(table.loc["old", "compute_dtype"])
