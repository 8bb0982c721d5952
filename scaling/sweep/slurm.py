"""The Slurm launcher: every point without a final result runs as one task of a submitit job array.

Attached (`run_slurm`), the sweep's waves run one after the other while this process waits; detached
(`submit_detached`), every wave is submitted at once, each array starting after the ones holding its points'
trunks (afterok), and the jobs are followed with `scaling sweep status`. Both record each point's job in the
root (scaling.sweep.slurm_jobs).
"""

from __future__ import annotations

import dataclasses
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
from scaling.runtime.distributed import initialize
from scaling.runtime.preemption import request_stop
from scaling.sweep.gpus import EXPECT_PLATFORM
from scaling.sweep.progress import SweepProgress
from scaling.sweep.slurm_jobs import query_states, read_jobs, record_jobs
from scaling.sweep.slurm_options import SlurmOptions
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
    """`train_unit` as a Slurm job, requeued when preempted or timed out (`max_num_timeout` times at most).

    A job of several tasks (--nodes, --tasks-per-node) first joins them into one jax.distributed program, as
    JAX detects it from Slurm's environment. A job whose runs did not all complete fails (raises), so that the
    arrays depending on it (afterok) do not start; one requeued after preemption does not.

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

        initialize()
        requeue = signal.signal(signal.SIGUSR2, stop_training)
        try:
            statuses = train_unit(points, root, wandb)
        finally:
            signal.signal(signal.SIGUSR2, requeue)
        if warned.is_set() and Status.PREEMPTED in statuses.values() and callable(requeue):
            requeue(signal.SIGUSR2, None)  # requeues and exits (task 0; the others return)
            return statuses
        unfinished = {run_id: status for run_id, status in statuses.items() if status != Status.COMPLETED}
        if unfinished:
            raise RuntimeError(f"runs not completed: {unfinished}; the job fails so that no job depending on it "
                               "(afterok) starts")
        return statuses


@dataclasses.dataclass(frozen=True)
class SubmittedArray:
    """A job array submitted by `submit_detached`: its id, runs, tasks and the arrays it starts after."""

    job_id: str
    runs: int
    tasks: int
    after: tuple[str, ...]


def run_slurm(
    points: list[SweepPoint], root: Path, options: SlurmOptions, *, wandb: str | None = None,
    pack_size: int = 1, folder: Path | None = None, on_finish: Callable[[SweepPoint, str], None] | None = None,
    work: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Run every point without a final result as one Slurm job array, wait for it; return {run_id: status}.

    Each task trains one launch unit: a point, or `pack_size` same-shape points packed with jax.vmap, with the
    resources and parameters of `options` (`executor_parameters`); a job given GPUs fails its points rather than
    train on the CPU (`platform_error`). Jobs run this Python in the current directory, in the submitting
    environment without XLA_FLAGS (the login node's flags need not fit the GPU nodes), plus a compilation cache
    shared by the sweep's runs (as the local launcher's), plus `options.env` (which may set XLA_FLAGS). `work`
    (run id -> planned FLOPs, `planned_work`) weighs the progress line's ETA. submitit's files go to `folder`
    (default `root/.submitit/<timestamp>`, fresh per launch). A job that ends without a result is recorded as
    failed with the tail of its log; interrupting the wait cancels the jobs still queued or running. Points
    whose job of an earlier `--detach` is still queued are a ConfigError: they would train twice.
    """
    root.mkdir(parents=True, exist_ok=True)
    todo = launch_units([point for point in points if not is_done(root, point)], pack_size)
    if todo:
        check_slurm(options.partition)
        queued = queued_jobs(root, [point.run_id for unit in todo for point in unit])
        if queued:
            raise ConfigError(f"{len(queued)} points are still queued as Slurm jobs of an earlier `scaling sweep run "
                              f"--detach` ({', '.join(sorted(set(queued.values()))[:5])}); follow them with `scaling "
                              f"sweep status --root {root}`, add --detach to submit only the other points, or "
                              "scancel the jobs")
    progress = SweepProgress.of_launch(len(points), todo, work)
    statuses: dict[str, str] = {}
    if todo:
        jobs = _submit(todo, root, options, wandb, folder or _launch_folder(root))
        statuses = _wait(list(zip(todo, jobs)), root, progress, on_finish)
    progress.summary()
    return statuses


def submit_detached(
    waves: list[list[SweepPoint]], root: Path, options: SlurmOptions, *, wandb: str | None = None,
    pack_size: int = 1, folder: Path | None = None,
) -> tuple[list[SubmittedArray], dict[str, str]]:
    """Submit one job array per wave (`dependency_waves`) of the points without a final result, and return.

    An array whose points run after others (cooldown branches after their trunks) starts once the arrays
    holding those completed, every task successfully (`--dependency=afterok`); if one failed, Slurm cancels it
    (`--kill-on-invalid-dep=yes`) and `scaling sweep status` records its points as failed. Points whose job (of
    an earlier submission) is still queued are not submitted again: an array depends on theirs instead.
    Returns the arrays submitted and {run_id: job id} of the points left to their queued jobs.
    """
    root.mkdir(parents=True, exist_ok=True)
    waves = [[point for point in wave if not is_done(root, point)] for wave in waves]
    if not any(waves):
        return [], {}
    check_slurm(options.partition)
    queued = queued_jobs(root, [point.run_id for wave in waves for point in wave])
    array_of = {run_id: job.split("_")[0] for run_id, job in queued.items()}
    folder = folder or _launch_folder(root)
    submitted = []
    for wave in waves:
        units = launch_units([point for point in wave if point.run_id not in queued], pack_size)
        if not units:
            continue
        after = tuple(sorted({array_of[point.after] for unit in units for point in unit if point.after in array_of}))
        jobs = _submit(units, root, options, wandb, folder, after)
        array_of |= {point.run_id: job.job_id.split("_")[0] for unit, job in zip(units, jobs) for point in unit}
        submitted.append(SubmittedArray(jobs[0].job_id.split("_")[0], sum(map(len, units)), len(units), after))
    return submitted, queued


def queued_jobs(root: Path, run_ids: list[str]) -> dict[str, str]:
    """{run_id: job id} of the points among `run_ids` whose recorded job Slurm still lists (pending, running)."""
    wanted = set(run_ids)
    jobs = {run_id: job["job"] for run_id, job in read_jobs(root).items() if run_id in wanted}
    states = query_states(jobs.values()) or {}
    return {run_id: job for run_id, job in jobs.items() if job in states and states[job].queued}


def make_executor(
    root: Path, options: SlurmOptions, job_name: str, folder: Path, after: tuple[str, ...] = ()
) -> submitit.SlurmExecutor:
    """A submitit executor with `options` (time limit requeues: `max_requeues`); its jobs start after the jobs
    `after` completed (afterok), or are cancelled if one of those failed."""
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.max_requeues)
    parameters = options.executor_parameters()
    if after:
        parameters["dependency"] = "afterok:" + ":".join(after)
        parameters["additional_parameters"] = {"kill-on-invalid-dep": "yes",
                                               **parameters.get("additional_parameters", {})}
    gpu_env = {EXPECT_PLATFORM: "gpu"} if options.gpus_per_node else {}
    executor.update_parameters(job_name=job_name, setup=_job_setup(root, {**gpu_env, **options.env}), **parameters)
    return executor


def _submit(
    units: list[Unit], root: Path, options: SlurmOptions, wandb: str | None, folder: Path, after: tuple[str, ...] = ()
) -> list[submitit.Job]:
    """Submit `units` as one job array (after the jobs `after`); record each point's job in the root."""
    executor = make_executor(root, options, units[0][0].sweep, folder, after)
    try:
        jobs = executor.map_array(UnitJob(), units, [str(root)] * len(units), [wandb] * len(units))
    except FailedJobError as error:  # sbatch refused the array
        raise ConfigError(f"sbatch refused the sweep's job array: {_last_line(str(error))}; check --partition, "
                          "--account, --qos, --mem, --gpus-per-node, --timeout-min and --slurm-param against `sinfo` "
                          "and `sacctmgr show associations user=$USER`, or use --launcher local") from None
    waits = {"after": ",".join(after)} if after else {}
    record_jobs(root, {point.run_id: {"job": job.job_id, "log": str(job.paths.stderr.absolute()), **waits}
                       for unit, job in zip(units, jobs) for point in unit})
    return jobs


def _launch_folder(root: Path) -> Path:
    return root / ".submitit" / time.strftime("%Y%m%d-%H%M%S")


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
