"""Test setup: 8 virtual CPU devices (set before jax is imported) and shared fixtures."""

import os
import tempfile

# Without LLVM's optimisations (XLA's HLO passes all still run: the same programs, float results may differ in the
# last bits, e.g. no fused multiply-adds): the tests' tiny programs compile 2 to 3 times faster, and compiling is
# most of what they spend.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("WANDB_SILENT", "true")
# Tests compile the same tiny programs many times (also in subprocesses): share one persistent cache.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="scaling-tests-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The CPU's peak FLOP/s (for MFU) is measured once and cached: keep that cache out of the home directory.
os.environ.setdefault("SCALING_CACHE_DIR", tempfile.mkdtemp(prefix="scaling-tests-cache-"))

import pytest


@pytest.fixture(scope="session")
def digits_data_dir(tmp_path_factory) -> str:
    """A tfds data_dir holding the embedded `digits` dataset, built once per session."""
    from scaling.data import open_builder

    data_dir = str(tmp_path_factory.mktemp("tfds_data"))
    open_builder("digits", data_dir)
    return data_dir
