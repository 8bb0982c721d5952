"""Device peak FLOP/s (spec table, cached CPU probe) and model FLOPs utilization."""

import json
import math
from types import SimpleNamespace

import jax
import pytest

from scaling.runtime import devices
from scaling.runtime.devices import model_flops_utilization, peak_flops_per_second


@pytest.mark.parametrize(
    ("kind", "bf16", "fp32"),
    [
        ("TPU v4", 275e12, 275e12),
        ("TPU v5 lite", 197e12, 197e12),
        ("TPU v5p", 459e12, 459e12),
        ("TPU v5", 459e12, 459e12),
        ("TPU v6 lite", 918e12, 918e12),
        ("NVIDIA A100-SXM4-80GB", 312e12, 156e12),
        ("NVIDIA H100 80GB HBM3", 989e12, 495e12),
        ("NVIDIA H100 PCIe", 756e12, 378e12),
        ("NVIDIA H200", 989e12, 495e12),
        ("NVIDIA B200", 2250e12, 1100e12),
    ],
)
def test_accelerator_peaks(kind: str, bf16: float, fp32: float) -> None:
    device = SimpleNamespace(platform="gpu" if "NVIDIA" in kind else "tpu", device_kind=kind)
    assert peak_flops_per_second(device, "bfloat16") == bf16
    assert peak_flops_per_second(device) == fp32


def test_unknown_accelerator_and_dtype_are_errors() -> None:
    with pytest.raises(ValueError, match="'NVIDIA GeForce GTX 1080'"):
        peak_flops_per_second(SimpleNamespace(platform="gpu", device_kind="NVIDIA GeForce GTX 1080"))
    with pytest.raises(ValueError, match="int8"):
        peak_flops_per_second(jax.devices()[0], "int8")


def test_cpu_peak_is_measured_once_and_cached(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALING_CACHE_DIR", str(tmp_path))
    peak = peak_flops_per_second(jax.devices()[0])
    assert math.isfinite(peak) and peak > 0
    cached = json.loads((tmp_path / "cpu_peak.json").read_text())
    assert list(cached.values()) == [peak]
    assert f"| {jax.device_count()} devices | float32" in next(iter(cached))

    def no_probe(*args):
        raise AssertionError("the cached peak must be read, not measured again")

    monkeypatch.setattr(devices, "measure_cpu_peak", no_probe)
    assert peak_flops_per_second(jax.devices()[-1], "float32") == peak


def test_model_flops_utilization() -> None:
    # 6 GFLOPs per example at 100 examples/s on 2 devices of 1 TFLOP/s each: 30% of peak.
    assert model_flops_utilization(6e9, 100.0, 2, 1e12) == pytest.approx(0.3)
