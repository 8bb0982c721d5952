"""Running one sweep point in this process (what a Slurm job executes)."""

from __future__ import annotations

from pathlib import Path

from scaling.records import read_result
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import is_done


def train_point(point: SweepPoint, root: str | Path, wandb: str | None = None) -> str:
    """Train (or resume) `point` in `root/<run_id>` unless it is done; return its recorded status.

    Failures are recorded in the run's result.json by the trainer and reported, not raised.
    """
    from scaling.train import train_and_evaluate

    root = Path(root)
    if not is_done(root, point):
        config = point.load()
        if wandb:
            config.wandb.mode = wandb
        try:
            train_and_evaluate(config, root / point.run_id)
        except Exception:  # recorded in result.json as failed
            pass
    return read_result(root / point.run_id)["status"]
