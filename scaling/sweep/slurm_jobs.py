"""The Slurm jobs a sweep root's points were submitted as (ROOT/.slurm/jobs.json), and their states in Slurm.

The record lets `scaling sweep status` show each point's job (PENDING with its reason, RUNNING, ...), lets a
second `scaling sweep run` leave points whose job is still queued alone, and turns a job that ended without a
final result (killed, timed out, out of memory, cancelled because its trunk failed) into a `failed` result.
It needs Slurm's client commands only to ask for states; without them states are unknown, never guessed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from analysis.files import write_atomically
from analysis.table.contract import Status
from scaling.errors import RecordError
from scaling.sweep.spec import SweepPoint
from scaling.sweep.state import readable_result, record_unfinished

JOBS_FILE = Path(".slurm") / "jobs.json"
QUERY_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class SlurmState:
    """A job's state in Slurm (PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ...); `reason` why it waits;
    `queued` while squeue lists it (pending, running, requeued: not ended)."""

    state: str
    reason: str = ""
    queued: bool = False

    def __str__(self) -> str:
        return f"{self.state} ({self.reason})" if self.reason and self.reason != "None" else self.state


UNKNOWN = SlurmState("UNKNOWN")  # ended, but Slurm no longer knows how (no accounting, and purged from the queue)


def read_jobs(root: Path) -> dict[str, dict[str, str]]:
    """{run_id: {"job": Slurm job id (`ARRAY_TASK`), "log": its stderr log, "after": the jobs it waits for, if any}}
    of every point submitted under `root`."""
    path = root / JOBS_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())["jobs"]
    except (ValueError, KeyError, TypeError) as error:
        raise RecordError(f"{path} is damaged ({error}); remove it (it only lists the points' Slurm jobs: "
                          "`scaling sweep status` then shows no Slurm states)") from None


def record_jobs(root: Path, jobs: Mapping[str, Mapping[str, str]]) -> None:
    """Add (or replace) points' jobs in the record, atomically; the caller holds the sweep root's lock."""
    path = root / JOBS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**read_jobs(root), **jobs}
    write_atomically(path, json.dumps({"jobs": record}, indent=2, sort_keys=True) + "\n")


def query_states(job_ids: Iterable[str]) -> dict[str, SlurmState] | None:
    """Each job's state: squeue's for queued jobs, else sacct's (UNKNOWN where neither knows it); None when
    Slurm's commands are missing or its controller does not answer."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    arrays = ",".join(sorted({job_id.split("_")[0] for job_id in ids}))
    queued = _query(["squeue", "--noheader", "--array", "--format=%i|%T|%r", f"--jobs={arrays}"])
    if queued is None:
        return None
    states = {job: SlurmState(state, reason, queued=True) for job, state, reason in queued}
    if set(ids) - set(states):
        ended = _query(["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State",
                        f"--jobs={arrays}"]) or []
        states |= {task: SlurmState(state.split()[0]) for job, state in ended for task in array_tasks(job)
                   if task not in states}
    return {job_id: states.get(job_id, UNKNOWN) for job_id in ids}


def array_tasks(job_id: str) -> list[str]:
    """The job ids a line of sacct stands for: `7_[0-2,5%2]` (array tasks that never started) is 7_0, 7_1, 7_2, 7_5."""
    match = re.fullmatch(r"(\d+)_\[([0-9,-]+)(%\d+)?\]", job_id)
    if not match:
        return [job_id]
    tasks = []
    for part in match[2].split(","):
        first, _, last = part.partition("-")
        tasks += [f"{match[1]}_{task}" for task in range(int(first), int(last or first) + 1)]
    return tasks


def settle_ended(root: Path, jobs: Mapping[str, Mapping[str, str]], states: Mapping[str, SlurmState]) -> list[str]:
    """Record as failed every point whose job has ended without a final result (none, or `running` left by a
    killed job), with the job's end state and log tail; return their run ids."""
    settled = []
    for run_id, job in sorted(jobs.items()):
        state = states.get(job["job"])
        if state is None or state.queued:
            continue
        result = readable_result(root / run_id)
        if result is None or result["status"] == Status.RUNNING:
            waited = f" (it was to start once job {job['after']} completed: afterok)" if job.get("after") else ""
            error = f"Slurm job {job['job']} ended {state.state} without a result"
            error += f"{waited * (state.state == 'CANCELLED')}\ntail of {job['log']}:\n{_tail(Path(job['log']))}"
            record_unfinished(root, _recorded_point(run_id), lambda error=error: error)
            settled.append(run_id)
    return settled


def _recorded_point(run_id: str) -> SweepPoint:
    """The point of a recorded job, as far as its workdir's records go (they name it by run id only)."""
    return SweepPoint(sweep="", run_id=run_id, config="", overrides=())


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _query(command: list[str]) -> list[list[str]] | None:
    """The `|`-separated fields of each line `command` prints; [] when it names no known job; None when it cannot
    run."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode:
        return [] if "Invalid job id" in done.stderr else None
    return [line.split("|") for line in done.stdout.splitlines() if line.strip()]
