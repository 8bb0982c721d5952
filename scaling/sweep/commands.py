"""The `scaling sweep show|run|status|results` commands."""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from analysis.table.contract import Status
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
                     help="local: processes on this machine; slurm: a Slurm job array through submitit")
    run.add_argument("--parallel", type=int, default=1,
                     help="local launcher: runs at a time, each on an equal share of the cores/GPUs (default 1)")
    run.add_argument("--partition", help="slurm launcher: partition to submit to")
    run.add_argument("--timeout-min", type=int, default=60, help="slurm launcher: time limit per job in minutes")
    run.add_argument("--gpus-per-node", type=int, default=0, help="slurm launcher: GPUs per job")
    run.add_argument("--pack", type=int, metavar="N",
                     help="train up to N same-shape points (seeds, learning rates, subset sizes) in one vmapped "
                     "program (default: the sweep file's PACK_SIZE, else 1)")
    run.add_argument("--wandb", choices=("offline", "online", "disabled"), help="wandb mode of every run")
    run.set_defaults(handler=_run)

    status = commands.add_parser("status", help="summarise the runs under a root")
    status.add_argument("--root", required=True, type=Path, help="the sweep's root folder")
    status.add_argument("sweep_file", nargs="?", help="experiments/<name>.py, to count points not yet started")
    status.set_defaults(handler=_status)

    results = commands.add_parser("results", help="write the results table (CSV and Parquet)")
    results.add_argument("--root", required=True, type=Path, help="the sweep's root folder")
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
    from scaling.sweep.local import run_local
    from scaling.sweep.planning import format_plan, plan_points
    from scaling.sweep.spec import dependency_waves, load_sweep

    if args.parallel < 1:
        raise SystemExit("error: --parallel must be at least 1")
    sweep = load_sweep(args.sweep_file)
    print(format_plan(sweep.points, plan_points(sweep.points)))
    pack_size = args.pack or sweep.pack_size
    statuses: dict[str, str] = {}
    for wave in dependency_waves(sweep.points):  # cooldown branches run after their trunks
        if args.launcher == "slurm":
            from scaling.sweep.slurm import run_slurm

            statuses |= run_slurm(wave, args.root, wandb=args.wandb, partition=args.partition, pack_size=pack_size,
                                  timeout_min=args.timeout_min, gpus_per_node=args.gpus_per_node)
        else:
            statuses |= run_local(wave, args.root, parallel=args.parallel, wandb=args.wandb, pack_size=pack_size)
    return 0 if all(status == Status.COMPLETED for status in statuses.values()) else 1


def _status(args: argparse.Namespace) -> int:
    from analysis.table.workdirs import run_dirs

    results = {str(d.relative_to(args.root)): read_result(d) for d in run_dirs(args.root)}
    if args.sweep_file:
        from scaling.sweep.spec import load_sweep

        for point in load_sweep(args.sweep_file).points:
            results.setdefault(point.run_id, None)
    counts = collections.Counter(result["status"] if result else "pending" for result in results.values())
    print(", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "no runs")
    for run_id, result in sorted(results.items()):
        status = result["status"] if result else "pending"
        error = (result or {}).get("final_eval") or {}
        detail = (
            f"top-1 error {error['top1_error']:.4f}" if "top1_error" in error else (result or {}).get("error") or ""
        )
        print(f"  {status:<10} {run_id:<48} {detail.splitlines()[0] if detail else ''}")
    return 0


def _results(args: argparse.Namespace) -> int:
    from scaling.sweep.results import write_results

    csv_path, parquet_path, table = write_results(args.root, args.out)
    print(f"{len(table)} rows from {table['run_id'].nunique()} runs -> {csv_path}, {parquet_path}")
    return 0
