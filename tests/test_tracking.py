"""Trackers as users expect them: a resumed run continues one wandb run (one run id, its attempts' folders in the
workdir's wandb/ folder, each step once), the runs of a pack log to their own wandb runs, and TensorBoard event
files that TensorFlow's own reader reads back."""

import json
import re
import struct
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf
import wandb
from helpers import NOT_IN_ACCELERATOR_IMAGES, run_without
from wandb.proto import wandb_internal_pb2

from scaling.config.defaults import base_config
from scaling.workdir.tensorboard import TensorBoardTracker, crc32c
from scaling.workdir.tracking import WANDB_ID_FILE, WandbTracker, open_trackers


def _wandb_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """The records of a wandb transaction log (`run-<id>.wandb`): after a 7-byte header (":W&B", magic 0xBEE1,
    version 0), LevelDB log chunks in 32 KiB blocks, each with a 7-byte header (CRC, uint16 length, type: 1 full,
    2 first, 3 middle, 4 last)."""
    data = path.read_bytes()
    assert data[:7] == b":W&B\xe1\xbe\x00"
    records, position, parts = [], 7, b""
    while len(data) - position >= 7:
        if 32768 - position % 32768 < 7:  # a block's zero-filled tail
            position += 32768 - position % 32768
            continue
        length, kind = struct.unpack("<HB", data[position + 4:position + 7])
        parts += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(parts))
            parts = b""
    return records


def _wandb_attempts(workdir: Path) -> list[dict]:
    """Each attempt's folder in workdir/wandb/, oldest first: its name, run record and history {step: row}."""
    wandb.teardown()  # wandb's service may still be writing the finished runs' logs (a run's process does this at exit)
    attempts = []
    for folder in sorted((workdir / "wandb").glob("offline-run-*")):
        (log,) = folder.glob("run-*.wandb")
        records = _wandb_records(log)
        (run,) = [record.run for record in records if record.HasField("run")]
        history = {}
        for record in records:
            if record.HasField("history"):
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                       for item in record.history.item}
                history[row["_step"]] = row
        attempts.append({"folder": folder.name, "run": run, "history": history})
    return attempts


def _event_scalars(workdir: Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every scalar in workdir/tensorboard/'s event files, read by TensorFlow in file order."""
    scalars = []
    for path in sorted((workdir / "tensorboard").iterdir()):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            scalars += [(event.step, value.tag, value.simple_value) for value in event.summary.value]
    return scalars


def test_crc32c_gives_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue's check value
    assert crc32c(b"") == 0


def test_event_files_hold_the_numeric_metrics_of_each_step(tmp_path):
    tracker = TensorBoardTracker(tmp_path)
    tracker.log(5, {"kind": "train", "train_loss": 0.5, "examples_seen": 160, "mfu": None, "flag": True})
    tracker.log(10, {"kind": "eval", "top1_error": 0.25, "minival/top1_error": 0.125})
    tracker.log(-3, {"kind": "eval"})  # nothing numeric: no event
    tracker.close()
    (path,) = (tmp_path / "tensorboard").iterdir()
    assert path.name.startswith("events.out.tfevents.")
    events = list(tf.compat.v1.train.summary_iterator(str(path)))  # checks every record's CRCs
    assert events[0].file_version == "brain.Event:2"
    assert [(event.step, [(value.tag, value.simple_value) for value in event.summary.value])
            for event in events[1:]] == [(5, [("train_loss", 0.5), ("examples_seen", 160.0)]),
                                         (10, [("top1_error", 0.25), ("minival/top1_error", 0.125)])]
    assert events[0].wall_time <= events[1].wall_time <= events[2].wall_time


def test_a_resumed_run_continues_one_wandb_run_and_logs_each_step_once(tmp_path):
    """Attempt 1 logs steps 1-5 and is killed; its last checkpoint was step 2, so attempt 2 logs steps 3-8."""
    config = base_config("resnet")
    config.wandb.mode, config.wandb.group, config.tensorboard.enabled = "offline", "my-sweep", True
    workdir = tmp_path / "resnet-w4"
    workdir.mkdir()

    def attempt(start_step: int, steps: range, offset: float) -> None:
        trackers = open_trackers(config, workdir, start_step)
        for step in steps:
            trackers.log(step, {"kind": "train", "train_loss": offset + step})
        trackers.close()

    attempt(0, range(1, 6), 100.0)
    attempt(2, range(3, 9), 200.0)

    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line["train_loss"]) for line in lines] == [(1, 101), (2, 102), *((s, 200 + s) for s in
                                                                                           range(3, 9))]
    run_id = (workdir / WANDB_ID_FILE).read_text()
    # wandb 0.31 makes one folder per attempt, named by its start time and the run id (and -1, -2, ... when two
    # attempts start within the same second)
    first, second = _wandb_attempts(workdir)
    for attempt_ in (first, second):
        assert re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", attempt_["folder"]), attempt_["folder"]
        run = attempt_["run"]
        assert (run.run_id, run.run_group, run.display_name) == (run_id, "my-sweep", "resnet-w4")
    assert {step: row["train_loss"] for step, row in first["history"].items()} == {s: 100 + s for s in range(1, 6)}
    assert {step: row["train_loss"] for step, row in second["history"].items()} == {s: 200 + s for s in range(6, 9)}
    assert _event_scalars(workdir) == [*((s, "train_loss", 100 + s) for s in range(1, 6)),
                                       *((s, "train_loss", 200 + s) for s in range(6, 9))]


def test_the_runs_of_a_pack_log_to_their_own_wandb_runs(tmp_path):
    workdirs = [tmp_path / "a", tmp_path / "b"]
    trackers = []
    for workdir in workdirs:
        workdir.mkdir()
        trackers.append(WandbTracker(workdir, "offline", "p", None, workdir.name, {}))
    for step in (1, 2):
        for index, tracker in enumerate(trackers):
            tracker.log(step, {"loss": 10.0 * index + step})
    for tracker in trackers:
        tracker.close()
    for index, workdir in enumerate(workdirs):
        (attempt,) = _wandb_attempts(workdir)
        assert attempt["run"].run_id == (workdir / WANDB_ID_FILE).read_text()
        assert {step: row["loss"] for step, row in attempt["history"].items()} == {1: 10 * index + 1,
                                                                                   2: 10 * index + 2}


@pytest.mark.parametrize("enabled", [False, True])
def test_event_files_only_when_asked(tmp_path, enabled):
    config = base_config("resnet")
    config.wandb.mode, config.tensorboard.enabled = "disabled", enabled
    trackers = open_trackers(config, tmp_path, 0)
    trackers.log(1, {"kind": "train", "train_loss": 1.0})
    trackers.close()
    assert (tmp_path / "tensorboard").exists() == enabled
    assert not (tmp_path / "wandb").exists()


def test_event_files_are_written_where_neither_tensorflow_nor_tensorboard_can_be_imported(tmp_path):
    child = textwrap.dedent("""
        import sys
        from pathlib import Path
        from scaling.workdir.tensorboard import TensorBoardTracker

        tracker = TensorBoardTracker(Path(sys.argv[1]))
        tracker.log(3, {"kind": "train", "train_loss": 0.75})
        tracker.close()
    """)
    done = run_without((*NOT_IN_ACCELERATOR_IMAGES, "tensorboard"), [sys.executable, "-c", child, str(tmp_path)])
    assert done.returncode == 0, done.stderr
    assert _event_scalars(tmp_path) == [(3, "train_loss", 0.75)]
