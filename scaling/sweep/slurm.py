"""The Slurm launcher: every point without a final result runs as one task of a single submitit job array."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import site
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import scaling
from analysis.table.contract import Status
from scaling.errors import ConfigError
from scaling.runtime.preemption import request_stop
from scaling.sweep.gpus import EXPECT_PLATFORM
from scaling.sweep.progress import SweepProgress
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import compilation_cache_env, is_done, record_unfinished, superseded
from scaling.sweep.units import Unit, launch_units
from scaling.sweep.worker import train_unit
from scaling.workdir.records import read_result

try:
    import submitit
    from submitit.core.utils import FailedJobError
except ImportError as error:  # an environment without the launcher's package: one error line, not a traceback
    raise ConfigError(f"--launcher slurm submits through submitit, which cannot be imported here ({error}): pip "
                      "install submitit, or use --launcher local") from None

POLL_SECONDS = 2.0
PROBE_TIMEOUT_S = 60.0  # `sinfo` retries an unreachable controller for a while before it fails
SLURM_FIX = "check that `sinfo` answers on this machine (Slurm's client and slurmctld), or use --launcher local"
UNINHERITED = ("XLA_FLAGS",)  # settings of the submitting shell that jobs must not pick up (unless given in `env`)


class UnitJob(submitit.helpers.Checkpointable):
    """`train_unit` as a Slurm job, requeued when preempted or timed out.

    Slurm's warning signal (USR2) only asks training to stop: the runs checkpoint after their current
    step and record `preempted`. Then submitit's own handler runs, from here rather than from wherever
    the signal landed (its exit, raised mid-save, could be swallowed by orbax and the job end without a
    requeue): it calls the inherited `checkpoint()`, requeues the same unit and exits. The new attempt
    resumes from the runs' orbax checkpoints.
    """

    def __call__(self, points: Unit, root: str, wandb: str | None) -> dict[str, str]:
        warned = threading.Event()

        def stop_training(signum: int, frame: FrameType | None) -> None:
            warned.set()
            request_stop()

        requeue = signal.signal(signal.SIGUSR2, stop_training)
        try:
            statuses = train_unit(points, root, wandb)
        finally:
            signal.signal(signal.SIGUSR2, requeue)
        if warned.is_set() and Status.PREEMPTED in statuses.values() and callable(requeue):
            requeue(signal.SIGUSR2, None)
        return statuses


def run_slurm(
    points: list[SweepPoint], root: Path, *, wandb: str | None = None, partition: str | None = None,
    timeout_min: int = 60, cpus_per_task: int = 4, gpus_per_node: int = 0, array_parallelism: int = 64,
    pack_size: int = 1,
    env: Mapping[str, str] | None = None, folder: Path | None = None,
    on_finish: Callable[[SweepPoint, str], None] | None = None, work: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Run every point without a final result as one Slurm job array, wait for it; return {run_id: status}.

    Each task trains one launch unit: a point, or `pack_size` same-shape points packed with jax.vmap.

    At most `array_parallelism` tasks run at once, each on one node with `cpus_per_task` cores and
    `gpus_per_node` GPUs for at most `timeout_min` minutes (then requeued, up to 3 times); a job given
    GPUs fails its points rather than train on the CPU (`platform_error`). Jobs run this Python in the
    current directory, in the submitting environment without XLA_FLAGS (the login node's flags need not
    fit the GPU nodes), plus a compilation cache shared by the sweep's runs (as the local launcher's),
    plus `env` (which may set XLA_FLAGS). `work` (run id -> planned FLOPs,
    `planned_work`) weighs the progress line's ETA. submitit's
    files go to `folder` (default `root/.submitit/<timestamp>`, fresh per launch). A job that ends
    without a result is recorded as failed with the tail of its log; interrupting the wait cancels
    the jobs still queued or running.
    """
    root.mkdir(parents=True, exist_ok=True)
    todo = launch_units([point for point in points if not is_done(root, point)], pack_size)
    if todo:
        check_slurm(partition)
    progress = SweepProgress.of_launch(len(points), todo, work)
    statuses: dict[str, str] = {}
    if todo:
        executor = submitit.SlurmExecutor(folder=folder or root / ".submitit" / time.strftime("%Y%m%d-%H%M%S"))
        executor.update_parameters(
            job_name=todo[0][0].sweep, time=timeout_min, nodes=1, ntasks_per_node=1, cpus_per_task=cpus_per_task,
            array_parallelism=array_parallelism,
            setup=_job_setup(root, {**({EXPECT_PLATFORM: "gpu"} if gpus_per_node else {}), **(env or {})}),
            **({"partition": partition} if partition else {}),
            **({"gpus_per_node": gpus_per_node} if gpus_per_node else {}),
        )
        try:
            jobs = executor.map_array(UnitJob(), todo, [str(root)] * len(todo), [wandb] * len(todo))
        except FailedJobError as error:  # sbatch refused the array
            raise ConfigError(f"sbatch refused the sweep's job array: {_last_line(str(error))}; check --partition, "
                              "--gpus-per-node and --timeout-min against `sinfo`, or use --launcher local") from None
        statuses = _wait(list(zip(todo, jobs)), root, progress, on_finish)
    progress.summary()
    return statuses


def check_slurm(partition: str | None = None) -> None:
    """ConfigError, before anything is submitted, unless Slurm's commands are installed, its controller answers
    `sinfo`, and `partition` (if given) is one of its partitions."""
    missing = [command for command in ("sbatch", "srun", "sinfo") if shutil.which(command) is None]
    if missing:
        raise ConfigError(f"the Slurm launcher needs Slurm's {', '.join(missing)}, not found on PATH (this machine "
                          f"has no Slurm client); {SLURM_FIX}")
    try:
        probe = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True,
                               timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the Slurm controller did not answer `sinfo` within {PROBE_TIMEOUT_S:g} s; "
                          f"{SLURM_FIX}") from None
    if probe.returncode:
        reason = _last_line(probe.stderr) or f"exit status {probe.returncode}"
        raise ConfigError(f"the Slurm controller cannot be reached: `sinfo` failed ({reason}); {SLURM_FIX}")
    partitions = [name.rstrip("*") for name in probe.stdout.split()]  # `*` marks the default partition
    if partition is not None and partition not in partitions:
        raise ConfigError(f"--partition {partition} is not a Slurm partition here; `sinfo` lists "
                          f"{', '.join(partitions) or 'none'}")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else ""


def _job_setup(root: Path, env: Mapping[str, str]) -> list[str]:
    """Shell lines run before each job: drop UNINHERITED (and what `env` supersedes), export the cache and `env`,
    make `scaling` importable."""
    cache = compilation_cache_env(root)
    exports = {**{key: value for key, value in cache.items() if key not in os.environ}, **env}
    lines = [f"unset {name}" for name in (*UNINHERITED, *superseded(env))]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in exports.items()]
    source = Path(scaling.__file__).resolve().parents[1]
    if source not in {Path(path).resolve() for path in site.getsitepackages()}:  # a source checkout
        lines.append(f"export PYTHONPATH={shlex.quote(str(source))}${{PYTHONPATH:+:$PYTHONPATH}}")
    return lines


def _wait(
    jobs: list[tuple[Unit, submitit.Job]], root: Path, progress: SweepProgress,
    on_finish: Callable[[SweepPoint, str], None] | None,
) -> dict[str, str]:
    """Follow the jobs until all have ended (a job has started once it has a log); return their statuses."""
    started: dict[str, float] = {}
    statuses: dict[str, str] = {}
    try:
        while len(statuses) < sum(len(unit) for unit, _ in jobs):
            time.sleep(POLL_SECONDS)
            for unit, job in jobs:
                if unit[0].run_id in statuses:
                    continue
                done = job.done()
                if unit[0].run_id not in started and (done or job.paths.stdout.exists()):
                    started[unit[0].run_id] = time.monotonic()
                    for point in unit:
                        progress.started(point.run_id)
                if not done:
                    continue
                seconds = time.monotonic() - started[unit[0].run_id]
                for point in unit:
                    status = statuses[point.run_id] = record_unfinished(root, point, functools.partial(_job_error, job))
                    progress.finished(point.run_id, status, seconds, read_result(root / point.run_id))
                    if on_finish:
                        on_finish(point, status)
    except BaseException:
        unfinished = [job.job_id for unit, job in jobs if unit[0].run_id not in statuses]
        if unfinished:
            subprocess.run(["scancel", *unfinished], check=False)
        raise
    return statuses


def _job_error(job: submitit.Job) -> str:
    """Why a job left no result: how it ended, and the tail of its log."""
    ending = "raised an exception" if job.paths.result_pickle.exists() else f"ended in state {job.state}"
    log_tail = (job.stderr() or "")[-2000:]
    return f"Slurm job {job.job_id} {ending} without a result; tail of {job.paths.stderr}:\n{log_tail}"
