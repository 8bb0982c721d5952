"""The GPUs of the launching machine, how the local launcher shares them out among its workers, and each worker's
check that it trains on the GPUs it was given.

The launcher finds them without starting jax (its GPU backend would take memory the workers need).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from scaling.errors import ConfigError
from scaling.sweep.state import MEM_FRACTION_NAMES

EXPECT_PLATFORM = "SCALING_EXPECT_PLATFORM"  # set for a worker given GPUs: it must not train on another platform
SHARED_MEMORY_PERMILLE = 900  # of a GPU's memory, split among the workers that share it (the rest: CUDA contexts)
PROBE_TIMEOUT_S = 60.0
CPU_FIX = "set JAX_PLATFORMS=cpu to sweep on the CPU"
NO_GPU_FIX = f"{CPU_FIX}, or CUDA_VISIBLE_DEVICES to the GPUs to use"


def visible_gpus() -> list[str]:
    """The GPUs the sweep's workers may use, as CUDA_VISIBLE_DEVICES entries: none where JAX_PLATFORMS leaves out
    cuda; else the entries of CUDA_VISIBLE_DEVICES where it is set (up to the first invalid one, as CUDA reads it);
    else the indices `nvidia-smi` lists, none without it. ConfigError when `nvidia-smi` fails."""
    platforms = {name.strip() for name in os.environ.get("JAX_PLATFORMS", "").lower().split(",") if name.strip()}
    if platforms and not platforms & {"cuda", "gpu"}:
        return []
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        entries = (entry.strip() for entry in os.environ["CUDA_VISIBLE_DEVICES"].split(","))
        return list(itertools.takewhile(lambda entry: entry and not entry.startswith("-"), entries))
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        probe = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"`nvidia-smi` did not answer within {PROBE_TIMEOUT_S:g} s, so the sweep cannot tell which "
                          f"GPUs to give its workers; check the NVIDIA driver, or {NO_GPU_FIX}") from None
    if probe.returncode:
        reason = (probe.stderr or probe.stdout).strip().splitlines() or [f"exit status {probe.returncode}"]
        raise ConfigError(f"`nvidia-smi` failed ({reason[-1].strip()}), so the sweep cannot tell which GPUs to give "
                          f"its workers; check the NVIDIA driver, or {NO_GPU_FIX}")
    return probe.stdout.split()


def assign_gpus(gpus: Sequence[str], parallel: int) -> list[dict[str, str]]:
    """The GPU settings of each of `parallel` worker slots (none without GPUs).

    With at least as many GPUs as workers, each worker gets the same number of whole GPUs, a contiguous block (a
    run's device count, hence its mesh, must not depend on the slot it lands in; GPUs left over stay idle, with a
    warning). With fewer, workers share GPUs round-robin, each limited to an equal part of 90% of a GPU's memory,
    preallocated so that a worker that cannot get its part fails when it starts rather than mid-run.
    """
    if not gpus:
        return [{} for _ in range(parallel)]
    if parallel <= len(gpus):
        share = len(gpus) // parallel
        if idle := gpus[share * parallel:]:
            print(f"warning: {parallel} workers get {share} of the {len(gpus)} GPUs each, leaving {','.join(idle)} "
                  f"idle; use a --parallel that divides {len(gpus)} to use them all", file=sys.stderr)
        return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[slot * share:(slot + 1) * share]), EXPECT_PLATFORM: "gpu"}
                for slot in range(parallel)]
    per_gpu = -(-parallel // len(gpus))
    fraction = f"{SHARED_MEMORY_PERMILLE // per_gpu / 1000:g}"
    return [{"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)], EXPECT_PLATFORM: "gpu", MEM_FRACTION_NAMES[0]: fraction,
             "XLA_PYTHON_CLIENT_PREALLOCATE": "true"} for slot in range(parallel)]


def platform_error() -> str | None:
    """Why this worker must not train: it was given GPUs (EXPECT_PLATFORM) but jax came up on another platform;
    None when it may."""
    expected = os.environ.get(EXPECT_PLATFORM)
    if not expected:
        return None
    import jax

    try:
        actual = jax.default_backend()
    except RuntimeError as error:  # e.g. JAX_PLATFORMS=cuda without a working CUDA plugin
        actual = f"no platform ({error})"
    if actual == expected:
        return None
    given = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    return (f"this worker was given GPUs (CUDA_VISIBLE_DEVICES={given}) but jax runs on {actual}, so it trains "
            f"nothing; install jax's CUDA plugin (pip install -e '.[cuda12]'; `pip list | grep jax` should show "
            f"jax-cuda12-plugin at jaxlib's version), or {CPU_FIX}")
