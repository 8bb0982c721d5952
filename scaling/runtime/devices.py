"""Peak FLOP/s per device, the dtype a run computes in, and model FLOPs utilization (MFU).

Accelerators come from a table of vendor specs (dense, no sparsity). A CPU has no spec sheet here:
its peak in a dtype is measured once, by a jitted matrix-multiply probe in that dtype running on every
CPU device of the process at once, and cached as JSON in $SCALING_CACHE_DIR (default
~/.cache/imagenet-scaling)/cpu_peak.json, keyed by CPU model, device count and dtype.

MFU = (training FLOPs per example x examples per second) / (devices x reference peak per device), with
training FLOPs as counted by scaling.program.flops. The reference peak (`mfu_peak`) does not depend on
the dtype a run computes in, so a float32 run cannot look better than it is: on an accelerator it is the
chip's bfloat16 dense peak; on a CPU, which has no bfloat16 spec, it is the better of its measured
float32 and bfloat16 probes (the most the CPU showed in either dtype).

`train.compute_dtype=auto` resolves where the run's devices are known (`resolved_compute_dtype`, called
on the mesh's devices when the program is built): bfloat16 on GPU and TPU, float32 on CPU.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# device_kind substring (lower case, first match wins) -> (bfloat16, float32) dense peak FLOP/s per chip.
# At JAX's default precision float32 matmuls run as bfloat16 on TPU and as TF32 on NVIDIA tensor cores
# (Ampere and later; JAX docs, "Matmul precision"), so those are the float32 ceilings.
PEAKS: tuple[tuple[str, tuple[float, float]], ...] = (
    # Google Cloud TPU docs, "System architecture" (bf16 peak compute per chip).
    ("tpu v4", (275e12, 275e12)),
    ("tpu v5 lite", (197e12, 197e12)),  # v5e
    ("tpu v5e", (197e12, 197e12)),
    ("tpu v5", (459e12, 459e12)),  # v5p ("TPU v5p" or "TPU v5")
    ("tpu v6", (918e12, 918e12)),  # v6e Trillium ("TPU v6 lite")
    # NVIDIA datasheets, dense (half the "with sparsity" figures): BF16 and TF32 tensor core.
    ("a100", (312e12, 156e12)),  # A100 SXM4 / PCIe
    ("h100 pcie", (756e12, 378e12)),
    ("h100", (989e12, 495e12)),  # H100 SXM5 ("NVIDIA H100 80GB HBM3")
    ("h200", (989e12, 495e12)),  # H200 SXM: H100's compute
    ("b200", (2250e12, 1100e12)),  # HGX B200, per GPU
)
_DTYPES = {"bfloat16": 0, "float16": 0, "float32": 1}
_PROBE_SIZE = 512  # square matrices per device
_PROBE_CHAIN = 4  # matmuls per timed call
_PROBE_REPEATS = 5  # best of


def cache_dir() -> Path:
    """$SCALING_CACHE_DIR, else ~/.cache/imagenet-scaling."""
    return Path(os.environ.get("SCALING_CACHE_DIR") or Path.home() / ".cache" / "imagenet-scaling")


def peak_flops_per_second(device: jax.Device, dtype: str | jnp.dtype = "float32") -> float:
    """Dense peak FLOP/s of one `device` for matmuls in `dtype` (float32, bfloat16 or float16).

    Accelerators: the spec table; CPUs: the cached probe (measured on first use). Raises ValueError
    for an accelerator the table does not know, naming its device_kind.
    """
    name = jnp.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"no peak for dtype {name!r}; use one of {', '.join(_DTYPES)}")
    if device.platform == "cpu":
        return _cpu_peak(name)
    kind = device.device_kind.lower()
    for pattern, peaks in PEAKS:
        if pattern in kind:
            return peaks[_DTYPES[name]]
    raise ValueError(
        f"no peak FLOP/s known for device kind {device.device_kind!r}; add it to scaling.runtime.devices.PEAKS "
        f"(known: {', '.join(pattern for pattern, _ in PEAKS)})"
    )


def mfu_peak(device: jax.Device) -> float:
    """The MFU denominator: one `device`'s reference peak FLOP/s, whatever dtype the run computes in.

    An accelerator's bfloat16 dense peak; a CPU's best measured probe, float32 or bfloat16. Raises
    ValueError for an accelerator the table does not know, naming its device_kind.
    """
    if device.platform == "cpu":
        return max(_cpu_peak("float32"), _cpu_peak("bfloat16"))
    return peak_flops_per_second(device, "bfloat16")


def resolved_compute_dtype(setting: str, device: jax.Device) -> str:
    """The dtype a run on `device` computes in for train.compute_dtype=`setting` ("auto", "float32" or
    "bfloat16"): "auto" is bfloat16 on a GPU or TPU and float32 elsewhere (a CPU); the others are themselves."""
    if setting != "auto":
        return setting
    return "bfloat16" if device.platform in ("gpu", "tpu") else "float32"


def model_flops_utilization(flops_per_example: float, examples_per_second: float, num_devices: int,
                            peak_per_device: float) -> float:
    """Achieved training FLOP/s over the devices' peak: a fraction in [0, 1] for a sound peak."""
    return flops_per_example * examples_per_second / (num_devices * peak_per_device)


def _cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _cpu_peak(dtype: str) -> float:
    """Peak FLOP/s per CPU device in `dtype`: from the cache, else measured and cached.

    Each process measures its own devices (no cross-process program), and replaces the cache file at
    once, so processes sharing a cache never read half of it.
    """
    devices = jax.local_devices(backend="cpu")
    key = f"{_cpu_model()} | {len(devices)} devices | {dtype}"
    path = cache_dir() / "cpu_peak.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if key not in cached:
        cached[key] = measure_cpu_peak(devices, dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(cached, indent=1, sort_keys=True))
        temporary.replace(path)
    return float(cached[key])


def measure_cpu_peak(devices: list[jax.Device], dtype: str = "float32") -> float:
    """The CPU probe: `matmul_rate` of modest square matrices on all `devices` at once."""
    return matmul_rate(devices, dtype)


def matmul_rate(devices: list[jax.Device], dtype: str = "float32", size: int = _PROBE_SIZE, chain: int = _PROBE_CHAIN,
                repeats: int = _PROBE_REPEATS) -> float:
    """FLOP/s per device of `chain` chained [size, size] matmuls in `dtype` running on all `devices` at once (best
    of `repeats` timed calls, after one that compiles and warms up)."""
    n = size
    sharding = NamedSharding(Mesh(np.array(devices), ("devices",)), PartitionSpec("devices"))
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal((len(devices), n, n), np.float32).astype(dtype), sharding)
    w = jax.device_put((rng.standard_normal((len(devices), n, n), np.float32) / np.sqrt(n)).astype(dtype), sharding)

    @jax.jit
    def chained(x: jax.Array, w: jax.Array) -> jax.Array:
        for _ in range(chain):
            x = jnp.einsum("bij,bjk->bik", x, w)
        return x

    chained(x, w).block_until_ready()  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        chained(x, w).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * chain / best
