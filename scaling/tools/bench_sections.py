"""The sections of `scaling bench suite`: each measures one thing on this machine's devices and returns its
settings and figures. The shapes (`Shapes`) are the issue's on an accelerator, smaller where a CPU would take
hours, and tiny with --smoke."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np

from scaling.config.loading import load_config

MODELS = {"resnet": "configs/model.py:variant=resnet50", "vit": "configs/model.py:variant=vit-b/16"}
SMOKE_MODELS = {"resnet": "configs/resnet.py:width=4,depth=6,num_stages=2",
                "vit": "configs/vit.py:width=16,depth=1,num_heads=2,patch_size=4"}
PACK_MODEL = "configs/resnet.py:width=8,depth=10"  # `bench pack`'s default: a tiny ResNet
NO_MEMORY_STATS = "the CPU backend reports no memory statistics"


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured number (None, with the reason, where it could not be measured)."""

    name: str
    value: float | None
    unit: str
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Shapes:
    """What each section runs."""

    matmul: int  # side of the square bfloat16 matrices
    matmul_chain: int  # matmuls per timed call
    repeats: int  # timed calls of the matmul (best of)
    models: dict[str, str]  # "resnet"/"vit" -> config file and argument
    resolution: int  # of the step, loop and feed sections
    batch: int  # global batch of the step, loop and feed sections
    window: int  # steps per timed window of the bare step
    windows: int  # timed windows of the bare step (median of)
    synthetic: tuple[int, int, int]  # classes, training and evaluation examples of the synthetic dataset
    loop: tuple[int, int, int]  # the loop section's steps, logging and checkpoint interval (one round)
    pack_model: str
    pack_members: int
    pack_steps: int
    pack_resolution: int
    pack_batch: int
    feed_rows: int  # images in the feed section's memory-mapped file
    fit_points: int
    fit_per_parameter: int | None  # None: the full 4,500-start grid
    fit_scipy_every: int  # the scipy loop runs every this many starts of the grid (its time is scaled to all)
    overrides: tuple[str, ...] = ()  # of every config

    @classmethod
    def choose(cls, smoke: bool, platform: str, batch: int | None) -> Shapes:
        """Tiny shapes on one device for --smoke; else the issue's, with a smaller matmul and fewer timed steps on a
        CPU. `batch`: the step, loop and feed sections' global batch, if not the default."""
        if smoke:
            return cls(matmul=256, matmul_chain=2, repeats=3, models=SMOKE_MODELS, resolution=16, batch=batch or 16,
                       window=2, windows=2, synthetic=(10, 64, 32), loop=(4, 2, 4), pack_model=SMOKE_MODELS["resnet"],
                       pack_members=2, pack_steps=4, pack_resolution=16, pack_batch=16, feed_rows=64, fit_points=40,
                       fit_per_parameter=2, fit_scipy_every=4, overrides=("mesh.data=1",))
        cpu = platform == "cpu"
        return cls(matmul=2048 if cpu else 8192, matmul_chain=4, repeats=3 if cpu else 10, models=MODELS,
                   resolution=224, batch=batch or 256, window=1 if cpu else 10, windows=3, synthetic=(1000, 4096, 512),
                   loop=(100, 20, 50), pack_model=PACK_MODEL, pack_members=8, pack_steps=100, pack_resolution=32,
                   pack_batch=128, feed_rows=2048, fit_points=400, fit_per_parameter=None, fit_scipy_every=10)

    def config(self, config_arg: str, *overrides: str) -> ml_collections.ConfigDict:
        """`config_arg` on the synthetic dataset at the step shapes, trained for the loop section's steps (no wandb,
        evaluation at the end), then `overrides`."""
        from scaling.tools.loop_bench import bench_settings

        (steps, log_every, checkpoint_every), (classes, train, evaluation) = self.loop, self.synthetic
        return load_config(config_arg, [
            *bench_settings(steps), "data.name=synthetic", f"data.resolution={self.resolution}",
            f"data.synthetic.classes={classes}", f"data.synthetic.train_examples={train}",
            f"data.synthetic.eval_examples={evaluation}", "data.normalization=imagenet",
            f"train.batch_size={self.batch}", f"train.log_every_steps={log_every}",
            f"train.checkpoint_every_steps={checkpoint_every}", *self.overrides, *overrides,
        ])


Section = Callable[[Shapes, dict], tuple[dict, list[Figure]]]  # (shapes, shared results) -> (settings, figures)
Measured = tuple[float | None, str | None]  # (value, None) or (None, why it was not measured)


def matmul(shapes: Shapes, shared: dict) -> tuple[dict, list[Figure]]:
    """The achievable bfloat16 matmul rate of one device (chained square matmuls, best of a few) beside the table's
    peak of the chip."""
    from scaling.runtime.devices import matmul_rate, peak_flops_per_second

    device, n, chain = jax.devices()[0], shapes.matmul, shapes.matmul_chain
    rate = matmul_rate([device], "bfloat16", n, chain, shapes.repeats)
    peak = _or_reason(lambda: peak_flops_per_second(device, "bfloat16"))
    figures = [Figure("achieved", rate, "FLOP/s"), _figure("table_peak", peak, "FLOP/s"),
               _figure("fraction_of_peak", (rate / peak[0], None) if peak[0] else peak, "fraction")]
    return {"shape": [n, n], "chain": chain, "dtype": "bfloat16", "best_of": shapes.repeats}, figures


def step(shapes: Shapes, shared: dict) -> tuple[dict, list[Figure]]:
    """Each model's bare step (batch on the devices): images/s, steps/s, MFU, peak device memory, compile time."""
    from scaling.runtime.devices import mfu_peak, model_flops_utilization
    from scaling.tools.step_bench import bare_step_timer

    settings, figures = {"batch": shapes.batch, "resolution": shapes.resolution, "timed_steps": shapes.window,
                         "windows": shapes.windows, "dataset": "synthetic"}, []
    device = jax.devices()[0]
    for key, config_arg in shapes.models.items():
        before = _peak_bytes(device)
        timer = bare_step_timer(shapes.config(config_arg))
        peak = _or_reason(lambda: mfu_peak(device))
        steps_per_second = float(np.median([shapes.window / timer.seconds(shapes.window)
                                            for _ in range(shapes.windows)]))
        images_per_second = steps_per_second * timer.batch
        shared[f"{key}_images_per_second"] = images_per_second
        devices, flops = timer.program.mesh.devices.size, timer.plan.flops_per_example
        mfu = (model_flops_utilization(flops, images_per_second, devices, peak[0]), None) if peak[0] else peak
        settings[key] = {"config": config_arg, "compute_dtype": timer.program.compute_dtype, "devices": devices,
                         "params": timer.plan.params, "flops_per_example": flops, "mfu_peak_per_device": peak[0]}
        figures += [Figure(f"{key}.images_per_second", images_per_second, "images/s"),
                    Figure(f"{key}.steps_per_second", steps_per_second, "steps/s"),
                    _figure(f"{key}.mfu", mfu, "fraction"),
                    _figure(f"{key}.peak_memory", _memory_peak(device, before), "bytes"),
                    Figure(f"{key}.compile_seconds", timer.compile_seconds, "s")]
        del timer  # its state and batch leave the devices before the next model's
    return settings, figures


def loop(shapes: Shapes, shared: dict) -> tuple[dict, list[Figure]]:
    """Each model's full training loop (data, logs, one checkpoint) against its bare step: one round of `bench loop`."""
    from scaling.tools.loop_bench import bench_loop

    steps, log_every, checkpoint_every = shapes.loop
    settings, figures = {"steps": steps, "log_every_steps": log_every, "checkpoint_every_steps": checkpoint_every,
                         "rounds": 1, "batch": shapes.batch}, []
    for key, config_arg in shapes.models.items():
        result = bench_loop(shapes.config(config_arg), rounds=1)
        figures += [Figure(f"{key}.loop_steps_per_second", result.loop_rate, "steps/s"),
                    Figure(f"{key}.bare_steps_per_second", result.bare_rate, "steps/s"),
                    Figure(f"{key}.loop_over_bare", result.ratio, "ratio")]
    return settings, figures


def pack(shapes: Shapes, shared: dict) -> tuple[dict, list[Figure]]:
    """`bench pack`'s measure: tiny ResNets trained packed in one vmapped program against one after another."""
    from scaling.tools.pack_bench import bench_pack, pack_configs

    overrides = ["data.name=synthetic", f"data.resolution={shapes.pack_resolution}", "data.synthetic.classes=10",
                 f"data.synthetic.train_examples={16 * shapes.pack_batch}",
                 f"data.synthetic.eval_examples={2 * shapes.pack_batch}", "data.normalization=imagenet",
                 f"train.batch_size={shapes.pack_batch}", *shapes.overrides]
    result = bench_pack(pack_configs(shapes.pack_model, shapes.pack_members, shapes.pack_steps, overrides))
    settings = {"config": shapes.pack_model, "members": shapes.pack_members, "steps": shapes.pack_steps,
                "batch": shapes.pack_batch, "resolution": shapes.pack_resolution}
    return settings, [Figure("sequential_seconds", result.sequential_seconds, "s"),
                      Figure("packed_seconds", result.packed_seconds, "s"),
                      Figure("end_to_end_speedup", result.wall_ratio, "ratio"),
                      Figure("throughput_speedup", result.speed_ratio, "ratio")]


def feed(shapes: Shapes, shared: dict) -> tuple[dict, list[Figure]]:
    """Images/s of the uint8 cache path: `CachedBatches` gathers from a memory-mapped file of synthetic images (in
    the page cache: just written), each batch placed on the devices as the training loop places it; against what
    ResNet-50's bare step consumes (the step section's figure)."""
    from scaling.data.synthetic import SyntheticDataset
    from scaling.data.train_batches import CachedBatches
    from scaling.program import sharding
    from scaling.program.steps import StepInputs

    config = shapes.config(shapes.models["resnet"], f"data.synthetic.train_examples={shapes.feed_rows}")
    dataset, batch = SyntheticDataset.from_config(config.data), shapes.batch
    shape = (shapes.feed_rows, *dataset.facts.image_shape)
    mesh = sharding.make_mesh(config.mesh)
    norm = jax.device_put({"mean": np.zeros((1, shape[-1]), np.float32), "std": np.ones((1, shape[-1]), np.float32)},
                          sharding.replicated(mesh))
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as folder:
        path = Path(folder) / "images.u8"
        images = np.memmap(path, np.uint8, "w+", shape=shape)
        for start in range(0, len(images), 256):
            images[start:start + 256] = dataset.images("train", np.arange(start, min(start + 256, len(images))))
        images.flush()
        batches = CachedBatches(np.memmap(path, np.uint8, "r", shape=shape), dataset.labels("train"), batch, seed=0)

        def place(index: int) -> None:
            images, labels = batches.local_batch(index)
            inputs = StepInputs.place(mesh, images[None], labels[None], norm, np.ones(1, np.float32),
                                      np.array([[0, index]], np.int32))
            jax.block_until_ready(inputs.images)

        place(0)
        steps = max(4, 2 * shapes.feed_rows // batch)  # every row about twice
        rate = steps * batch / _seconds(lambda: [place(index) for index in range(1, steps + 1)])
    model = shared.get("resnet_images_per_second")
    ratio = (rate / model, None) if model else (None, "needs the step section's ResNet rate: add step to --sections")
    settings = {"resolution": shapes.resolution, "batch": batch, "rows": shapes.feed_rows, "batches": steps,
                "file_bytes": int(np.prod(shape))}
    return settings, [Figure("images_per_second", rate, "images/s"), _figure("over_resnet_step", ratio, "ratio")]


def fit(shapes: Shapes, shared: dict) -> tuple[dict, list[Figure]]:
    """The vectorised multi-start fit (on the default device) against optax.lbfgs under vmap (on a sample of the
    starts, scaled: a lower bound) and a scipy loop (on the CPU; on a sample of the starts where the grid is the
    full one, its time scaled to every start)."""
    from analysis.bench import benchmark_fit_starts

    result = benchmark_fit_starts(points=shapes.fit_points, per_parameter=shapes.fit_per_parameter,
                                  scipy_every=shapes.fit_scipy_every)
    gap = abs(result.vectorised_loss - result.scipy_loss) / result.scipy_loss
    settings = {"starts": result.starts, "points": result.points, "vectorised_on": jax.devices()[0].platform,
                "scipy_on": "cpu", "scipy_starts": result.scipy_starts,
                "scipy_seconds_measured": result.scipy_seconds, "optax_starts": result.optax_starts}
    return settings, [Figure("vectorised_seconds", result.vectorised_seconds, "s"),
                      Figure("first_call_seconds", result.first_seconds, "s"),
                      Figure("scipy_seconds", result.scipy_seconds_all, "s"),
                      Figure("speedup", result.speedup, "ratio"),
                      Figure("optax_seconds", result.optax_seconds_all, "s"),
                      Figure("best_loss_gap", gap, "fraction")]


SECTIONS: dict[str, Section] = {"matmul": matmul, "step": step, "loop": loop, "pack": pack, "feed": feed, "fit": fit}


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _or_reason(compute: Callable[[], float]) -> Measured:
    """(value, None), or (None, the ValueError's message)."""
    try:
        return compute(), None
    except ValueError as error:
        return None, str(error)


def _figure(name: str, measured: Measured, unit: str) -> Figure:
    return Figure(name, *measured[:1], unit, measured[1])


def _peak_bytes(device: jax.Device) -> int | None:
    stats = device.memory_stats()
    return stats.get("peak_bytes_in_use") if stats else None


def _memory_peak(device: jax.Device, before: int | None) -> Measured:
    """The device's peak bytes in use if they rose since `before` (memory statistics have no reset, so a peak an
    earlier model set hides a smaller one), else (None, the reason)."""
    after = _peak_bytes(device)
    if after is None:
        return None, NO_MEMORY_STATS
    if before is not None and after <= before:
        return None, f"stayed below the {before:,} bytes an earlier measure of this process reached (no reset)"
    return after, None
