"""Where metrics go: `metrics.jsonl` in the workdir (the source of truth) and wandb, behind one interface."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Protocol

from analysis.table.contract import METRICS_FILE

WANDB_ID_FILE = "wandb_run_id"


class Tracker(Protocol):
    """Receives one dict of metrics per logged step."""

    def log(self, step: int, metrics: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonlTracker:
    """Appends one JSON line per logged step to `workdir/metrics.jsonl`."""

    def __init__(self, workdir: Path, resume_step: int):
        self.path = workdir / METRICS_FILE
        drop_lines_after(self.path, resume_step)
        self.file = self.path.open("a")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        self.file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class WandbTracker:
    """Logs to wandb; the run id lives in the workdir so a resumed run continues the same wandb run."""

    def __init__(self, workdir: Path, mode: str, project: str, group: str | None, name: str, config: dict):
        import wandb

        id_file = workdir / WANDB_ID_FILE
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex[:12])
        self.run_id = id_file.read_text().strip()
        self.run = wandb.init(
            id=self.run_id, resume="allow", mode=mode, project=project, group=group, name=name,
            dir=str(workdir), config=config, settings=wandb.Settings(console="off", silent=True),
        )

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


class Trackers:
    """Fans each call out to several trackers."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log(step, metrics)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def drop_lines_after(path: Path, step: int) -> None:
    """Forget metrics logged after `step` (the resumed run logs them again)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in lines))


def read_metrics(workdir: Path) -> list[dict[str, Any]]:
    """All metric lines of a run, in order."""
    path = workdir / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
