"""The `scaling sweep show|run|status|results` commands."""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

from analysis.table.contract import Status
from scaling.errors import PREEMPTED_EXIT, ConfigError, RecordError
from scaling.locks import claim_folder
from scaling.sweep.slurm_options import SlurmOptions, add_slurm_arguments, given_slurm_flags, slurm_options
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import DAMAGED, PENDING, SWEEP_LOCK, parse_env
from scaling.workdir.records import read_result


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `sweep` and its subcommands."""
    sweep = subparsers.add_parser(
        "sweep", help="declare, run, resume and collect sweeps of model and data sizes",
        description="Sweeps are declared in experiments/<name>.py (see experiments/demo.py).",
    )
    commands = sweep.add_subparsers(dest="sweep_command", required=True, metavar="SWEEP_COMMAND")

    show = commands.add_parser("show", help="print the expanded grid with params, FLOPs and planned compute")
    show.add_argument("sweep_file", help="experiments/<name>.py")
    show.set_defaults(handler=_show)

    run = commands.add_parser(
        "run", help="run every point without a final result; resume interrupted ones",
        description="Completed and diverged points are skipped, interrupted ones resume from their checkpoints, "
        "failed ones are retried. Running it twice does no work twice.",
    )
    run.add_argument("sweep_file", help="experiments/<name>.py")
    run.add_argument("--root", required=True, type=Path, help="folder holding one workdir per point")
    run.add_argument("--launcher", choices=("local", "slurm"), default="local",
                     help="local: processes on this machine; slurm: a Slurm job array per wave through submitit "
                     "(see the slurm launcher's options below)")
    run.add_argument("--parallel", type=int,
                     help="local launcher: runs at a time (default: one per GPU, else 1), each on an equal share of "
                     "the cores and GPUs; more runs than GPUs share them, each with a part of a GPU's memory")
    run.add_argument("--pack", type=int, metavar="N",
                     help="train up to N same-shape points (seeds, learning rates, subset sizes) in one vmapped "
                     "program (default: the sweep file's PACK_SIZE, else 1)")
    run.add_argument("--wandb", choices=("offline", "online", "disabled"), help="wandb mode of every run")
    run.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                     help="set an environment variable in every worker or Slurm job, e.g. XLA_FLAGS=... "
                     "(repeatable; Slurm jobs do not inherit the shell's XLA_FLAGS, only this)")
    add_slurm_arguments(run)
    run.set_defaults(handler=_run)

    status = commands.add_parser(
        "status", help="summarise the runs under a root, with their Slurm jobs' states",
        description="Each run's status (from its result.json) and, for points submitted to Slurm, its job and the "
        "job's state (squeue, else sacct: PENDING with its reason, e.g. Dependency, RUNNING, COMPLETED, ...). A "
        "point whose job ended without a final result (failed, timed out, cancelled because a trunk failed) is "
        "recorded as failed here.")
    status.add_argument("--root", required=True, type=Path, help="the sweep's root folder")
    status.add_argument("sweep_file", nargs="?", help="experiments/<name>.py, to count points not yet started")
    status.set_defaults(handler=_status)

    results = commands.add_parser(
        "results", help="write the results table (CSV and Parquet)",
        description="One row per evaluation of every run under the root, or, given the sweep file, of exactly its "
        "points (other runs under the root, e.g. of an earlier version of the sweep, are listed and left out). "
        "Runs whose files cannot be read are named and left out.")
    results.add_argument("--root", required=True, type=Path, help="the sweep's root folder")
    results.add_argument("sweep_file", nargs="?", help="experiments/<name>.py: the table holds exactly its points")
    results.add_argument("--out", type=Path, help="table path without suffix (default ROOT/results)")
    results.set_defaults(handler=_results)


def _show(args: argparse.Namespace) -> int:
    from scaling.sweep.planning import format_plan, plan_points
    from scaling.sweep.spec import load_sweep

    sweep = load_sweep(args.sweep_file)
    print(f"sweep {sweep.name}")
    print(format_plan(sweep.points, plan_points(sweep.points)))
    return 0


def _run(args: argparse.Namespace) -> int:
    from scaling.sweep.gpus import visible_gpus
    from scaling.sweep.local import SweepStopped, run_local
    from scaling.sweep.planning import format_plan, plan_points, planned_work
    from scaling.sweep.spec import dependency_waves, load_sweep

    if args.parallel is not None and args.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1, got {args.parallel}")
    if args.pack is not None and args.pack < 1:
        raise ConfigError(f"--pack must be at least 1 (1: no packing), got {args.pack}")
    if args.launcher == "local" and (flags := given_slurm_flags(args)):
        named = list(dict.fromkeys(flags))
        raise ConfigError(f"{', '.join(named)} {'applies' if len(named) == 1 else 'apply'} to --launcher slurm only: "
                          f"add --launcher slurm, or drop {'it' if len(named) == 1 else 'them'}")
    env = parse_env(args.env)
    gpus = visible_gpus() if args.launcher == "local" else []
    sweep = load_sweep(args.sweep_file)
    slurm = slurm_options(args, env, sweep.slurm, args.sweep_file) if args.launcher == "slurm" else None
    plans = plan_points(sweep.points)
    print(format_plan(sweep.points, plans))
    work = planned_work(sweep.points, plans)
    pack_size = args.pack or sweep.pack_size
    statuses: dict[str, str] = {}
    with claim_folder(args.root, f"sweep root {args.root}", SWEEP_LOCK):  # one `sweep run` per root
        if args.detach:
            return _submit_detached(args, sweep.points, slurm, pack_size)
        for wave in dependency_waves(sweep.points):  # cooldown branches run after their trunks
            if slurm:
                from scaling.sweep.slurm import run_slurm

                statuses |= run_slurm(wave, args.root, slurm, wandb=args.wandb, pack_size=pack_size, work=work)
                continue
            try:
                statuses |= run_local(wave, args.root, parallel=args.parallel or len(gpus) or 1, wandb=args.wandb,
                                      pack_size=pack_size, gpus=gpus, env=env, work=work)
            except SweepStopped as stopped:
                print(f"sweep {sweep.name}: {stopped}", file=sys.stderr)
                return PREEMPTED_EXIT
    return 0 if all(status == Status.COMPLETED for status in statuses.values()) else 1


def _submit_detached(args: argparse.Namespace, points: list[SweepPoint], options: SlurmOptions, pack_size: int) -> int:
    """Submit every wave (`--detach`), say what was submitted and how to follow it."""
    from scaling.sweep.slurm import submit_detached
    from scaling.sweep.spec import dependency_waves

    submitted, queued = submit_detached(dependency_waves(points), args.root, options, wandb=args.wandb,
                                        pack_size=pack_size)
    for array in submitted:
        after = f", starting once job {' and '.join(array.after)} completed (afterok)" if array.after else ""
        packed = f" packed in {_count(array.tasks, 'array task')}" if array.tasks != array.runs else ""
        print(f"submitted Slurm job {array.job_id}: {_count(array.runs, 'run')}{packed}{after}")
    if queued:
        jobs = sorted({job.split("_")[0] for job in queued.values()}, key=lambda job: (len(job), job))  # arrays
        print(f"{_count(len(queued), 'run')} still queued in Slurm {'job' if len(jobs) == 1 else 'jobs'} "
              f"{', '.join(jobs)}: not submitted again")
    if not submitted and not queued:
        print("nothing to submit: every point has a final result")
        return 0
    print(f"follow the jobs with: scaling sweep status --root {args.root} {args.sweep_file}")
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _status(args: argparse.Namespace) -> int:
    from analysis.table.workdirs import run_dirs

    _check_root(args.root)
    slurm = _slurm_jobs(args.root)
    runs = {d.relative_to(args.root).as_posix(): _describe(d) for d in run_dirs(args.root)}
    foreign: set[str] = set()
    if args.sweep_file:
        from scaling.sweep.spec import load_sweep

        points = {point.run_id for point in load_sweep(args.sweep_file).points}
        foreign = set(runs) - points
        runs |= dict.fromkeys(points - set(runs), (PENDING, ""))
    runs |= {run_id: (PENDING, "") for run_id in slurm if run_id not in runs}
    counts = collections.Counter(status for status, _ in runs.values())
    print(", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "no runs")
    if slurm:
        jobs = collections.Counter(dict(slurm.values()).values())
        print("Slurm jobs: " + ", ".join(f"{count} {state}" for state, count in sorted(jobs.items())))
    width = max((len(f"{job} {state}") for job, state in slurm.values()), default=0)
    for run_id, (status, detail) in sorted(runs.items()):
        mark = f"  (not a point of {args.sweep_file})" if run_id in foreign else ""
        job = f"{' '.join(slurm.get(run_id, ('-', ''))).strip():<{width}} " if slurm else ""
        print(f"  {status:<10} {run_id:<48} {job}{detail.splitlines()[0] if detail else ''}{mark}".rstrip())
    if foreign:
        print(f"{len(foreign)} runs under {args.root} are not points of {args.sweep_file}: `scaling sweep results` "
              "with the sweep file leaves them out")
    return 0


def _slurm_jobs(root: Path) -> dict[str, tuple[str, str]]:
    """{run_id: (Slurm job id, its state)} of the points submitted under `root`; points whose job ended without a
    final result are first recorded as failed."""
    from scaling.sweep.slurm_jobs import query_states, read_jobs, settle_ended

    jobs = read_jobs(root)
    if not jobs:
        return {}
    states = query_states(job["job"] for job in jobs.values())
    if states is None:
        print("warning: Slurm's squeue cannot be asked from here (not installed, or its controller does not "
              "answer): the jobs' states are unknown", file=sys.stderr)
        return {run_id: (job["job"], "?") for run_id, job in jobs.items()}
    settle_ended(root, jobs, states)
    return {run_id: (job["job"], str(states[job["job"]])) for run_id, job in jobs.items()}


def _describe(workdir: Path) -> tuple[str, str]:
    """A run's status and one detail: its final top-1 error, its error, or why its result.json is unreadable."""
    try:
        result = read_result(workdir)
    except RecordError as error:
        return DAMAGED, str(error)
    final = result.get("final_eval") or {}
    return result["status"], f"top-1 error {final['top1_error']:.4f}" if "top1_error" in final else result.get(
        "error") or ""


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise ConfigError(f"sweep root {root} does not exist (or is not a folder); give the --root of a `scaling "
                          "sweep run`")


def _results(args: argparse.Namespace) -> int:
    from scaling.sweep.results import write_results

    _check_root(args.root)
    run_ids = None
    if args.sweep_file:
        from scaling.sweep.spec import load_sweep

        run_ids = [point.run_id for point in load_sweep(args.sweep_file).points]
    csv_path, parquet_path, table = write_results(args.root, args.out, run_ids)
    foreign = table.attrs.get("foreign", [])
    if foreign:
        print(f"left out {len(foreign)} runs under {args.root} that are not points of {args.sweep_file}: "
              f"{', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}", file=sys.stderr)
    if run_ids is not None and (missing := len(set(run_ids) - set(table["run_id"]))):
        print(f"{missing} of the sweep's {len(run_ids)} points have no readable run yet (`scaling sweep status "
              f"--root {args.root} {args.sweep_file}`)", file=sys.stderr)
    written = ", ".join(str(path) for path in (csv_path, parquet_path) if path)
    print(f"{len(table)} rows from {table['run_id'].nunique()} runs -> {written}")
    return 0
