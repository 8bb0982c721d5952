"""Where metrics go: `metrics.jsonl` in the workdir (the source of truth), wandb and TensorBoard event files, behind
one interface.

A resumed run restarts from its last checkpoint, so it logs again the steps that the earlier attempt logged after
that checkpoint. metrics.jsonl forgets the earlier attempt's lines of those steps; wandb and event files cannot
forget what they recorded, so they keep the earlier attempt's values of those steps and receive only newer steps:
each step appears once in each tracker, in increasing order.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import ml_collections

from analysis.errors import AnalysisError
from analysis.files import write_atomically
from analysis.table.contract import METRICS_FILE
from analysis.table.workdirs import read_metrics
from scaling.config.loading import to_json_dict
from scaling.errors import ConfigError, RecordError
from scaling.workdir.tensorboard import TensorBoardTracker

WANDB_ID_FILE = "wandb_run_id"


class Tracker(Protocol):
    """Receives one dict of metrics per logged step."""

    def log(self, step: int, metrics: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonlTracker:
    """Appends one JSON line per logged step to `workdir/metrics.jsonl`, after dropping the lines an earlier attempt
    logged after `resume_step`; `logged_through` is the last step that attempt logged (0: none)."""

    def __init__(self, workdir: Path, resume_step: int):
        self.path = workdir / METRICS_FILE
        self.logged_through = drop_lines_after(workdir, resume_step)
        self.file = self.path.open("a")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        self.file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class WandbTracker:
    """Logs to wandb; the run id lives in the workdir so a resumed run continues the same wandb run.

    Each attempt of a run is a folder `workdir/wandb/offline-run-<start time>-<id>` (`run-...` online): wandb
    (0.31) names the folder after the attempt's start time and writes a new one every time, all with the run's
    id. `wandb sync workdir/wandb/offline-run-*` uploads them, oldest first, into the one run. Several trackers
    may be open in one process (the runs of a pack), each logging to its own run.

    Offline, nothing leaves the machine: wandb's error reporting and telemetry, which otherwise look up and post
    to its server even offline, are off for the rest of the process (WANDB_ERROR_REPORTING=false, read by wandb's
    service when it starts and by its telemetry recorder when first made). wandb's logs stay in the workdir: the
    run's in workdir/wandb/, and those of the wandb service (which the process's first run starts) in
    workdir/wandb/cache/ rather than ~/.cache/wandb (WANDB_CACHE_DIR while the run starts).
    """

    def __init__(self, workdir: Path, mode: str, project: str, group: str | None, name: str, config: dict):
        import wandb

        if mode == "offline":
            os.environ["WANDB_ERROR_REPORTING"] = "false"
        id_file = workdir / WANDB_ID_FILE
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex[:12])
        self.run_id = id_file.read_text().strip()
        with _environment_variable("WANDB_CACHE_DIR", str((workdir / "wandb" / "cache").absolute())):
            self.run = wandb.init(
                id=self.run_id, resume="allow", mode=mode, project=project, group=group, name=name,
                dir=str(workdir), config=config, reinit="create_new",
                settings=wandb.Settings(console="off", silent=True),
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


class NewSteps:
    """Passes on to `tracker` only the steps after `logged_through`, those an earlier attempt did not log."""

    def __init__(self, tracker: Tracker, logged_through: int):
        self.tracker, self.logged_through = tracker, logged_through

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if step > self.logged_through:
            self.tracker.log(step, metrics)

    def close(self) -> None:
        self.tracker.close()


def open_trackers(config: ml_collections.ConfigDict, workdir: Path, start_step: int) -> Trackers:
    """The trackers of a run (re)starting at `start_step`: metrics.jsonl, and wandb and TensorBoard event files in
    `workdir/tensorboard/` as the config asks, those two from the first step the run has not logged yet."""
    jsonl = JsonlTracker(workdir, start_step)
    others: list[Tracker] = []
    if config.wandb.mode != "disabled":
        wandb = config.wandb
        others.append(WandbTracker(workdir, wandb.mode, wandb.project, wandb.group, workdir.name,
                                   to_json_dict(config)))
    if config.tensorboard.enabled:
        others.append(TensorBoardTracker(workdir))
    return Trackers([jsonl, *(NewSteps(tracker, jsonl.logged_through) for tracker in others)])


def drop_lines_after(workdir: Path, step: int) -> int:
    """Forget the metrics logged after `step` (the resumed run logs them again) and a torn last line (a kill or a
    full disk mid-write, reported), replacing metrics.jsonl atomically. Returns the last step the file held (0:
    none)."""
    path = workdir / METRICS_FILE
    if not path.exists():
        return 0
    try:
        lines = read_metrics(workdir)
    except AnalysisError as error:
        raise RecordError(f"{error}; or move the file away to resume without the earlier metrics") from None
    write_atomically(path, "".join(json.dumps(line) + "\n" for line in lines if line["step"] <= step))
    return max((line["step"] for line in lines), default=0)


@contextlib.contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    """Set environment variable `name` to `value` inside the block, then restore it."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def check_wandb_credentials(mode: str) -> None:
    """Raise ConfigError, so that a run fails before it reads any data, when `mode` is not "disabled" and wandb
    cannot be imported, or `mode` is online and wandb finds no credentials for its server (WANDB_API_KEY,
    WANDB_IDENTITY_TOKEN_FILE, a netrc entry or a settings file). Reads only local files and the environment:
    nothing is verified with the server."""
    if mode == "disabled":
        return
    try:
        import wandb  # noqa: F401 (its tracker imports it anyway)
    except ImportError as error:
        raise ConfigError(f"wandb.mode={mode!r} logs to wandb, which cannot be imported here ({error}): pip install "
                          "wandb, or set wandb.mode=disabled (`--wandb disabled`)") from None
    if mode != "online":
        return
    from wandb.errors import AuthenticationError
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    host = wandb_setup.singleton().settings.base_url
    try:
        credentials = wbauth.authenticate_session(host=host, source="scaling", prompt=False, update_session=False)
    except AuthenticationError as error:
        raise ConfigError(f"--wandb online: the wandb credentials for {host} are unusable ({error}): run "
                          "`wandb login --relogin` or set WANDB_API_KEY, or train with --wandb offline") from None
    if credentials is None:
        raise ConfigError(f"--wandb online needs a wandb API key for {host} and none is set (no WANDB_API_KEY, no "
                          "~/.netrc entry): run `wandb login` or set WANDB_API_KEY, or train with --wandb offline "
                          "(and `wandb sync` the run later)")
