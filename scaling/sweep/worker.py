"""Running a launch unit (one point, or a pack of points) in this process: what each launcher executes.

  python -m scaling.sweep.worker ROOT POINTS_JSON [--wandb MODE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from analysis.table.contract import Status
from scaling.sweep.gpus import platform_error
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import is_done, readable_result, record_unfinished


def train_unit(points: list[SweepPoint], root: str | Path, wandb: str | None = None) -> dict[str, str]:
    """Train (or resume) the points not yet done, packed in one program when there are several.

    Failures are recorded in each run's result.json by the trainer and reported, not raised; so is a worker
    given GPUs whose jax came up on another platform (`platform_error`): it trains nothing.
    Returns {run_id: recorded status}.
    """
    from scaling.train import train_packed

    root = Path(root)
    todo = [point for point in points if not is_done(root, point)]
    if todo and (wrong_platform := platform_error()):
        print(f"error: {wrong_platform}", file=sys.stderr)
        for point in todo:
            record_unfinished(root, point, lambda: wrong_platform)
    elif todo:
        configs = [point.load() for point in todo]
        for config in configs:
            config.wandb.mode = wandb or config.wandb.mode
        try:
            train_packed(configs, [root / point.run_id for point in todo])
        except Exception as error:  # recorded in result.json as failed
            print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return {point.run_id: (readable_result(root / point.run_id) or {"status": Status.FAILED})["status"]
            for point in points}


def encode_points(points: list[SweepPoint]) -> str:
    """The points as one JSON argument."""
    return json.dumps([dataclasses.asdict(point) for point in points])


def decode_points(text: str) -> list[SweepPoint]:
    """Points from `encode_points`."""
    return [SweepPoint(**{**item, "overrides": tuple(item["overrides"])}) for item in json.loads(text)]


def main(argv: list[str] | None = None) -> int:
    """Train one unit; exit status 0 when all its points completed."""
    parser = argparse.ArgumentParser(description="Train one launch unit of a sweep (used by the launchers).")
    parser.add_argument("root", help="the sweep's root folder")
    parser.add_argument("points", help="JSON list of sweep points")
    parser.add_argument("--wandb", choices=("offline", "online", "disabled"))
    args = parser.parse_args(argv)
    statuses = train_unit(decode_points(args.points), args.root, args.wandb)
    return 0 if all(status == Status.COMPLETED for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
