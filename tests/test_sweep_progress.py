"""The sweep's ETA weighs the runs by their planned work: after the smallest of three runs finished in 10 s, the
work left at that rate, not the count of runs left at that rate."""

import datetime
import re
from types import SimpleNamespace

from scaling.sweep import progress as progress_module
from scaling.sweep.planning import planned_work
from scaling.sweep.progress import SweepProgress


def etas(text: str) -> list[str]:
    return re.findall(r"ETA ([^\]]+)\]", text)


def test_eta_is_the_work_left_at_the_rate_of_the_work_done(monkeypatch, capsys):
    clock = iter([0.0, 0.0, 10.0])  # start, a started, a finished
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    units = [[SimpleNamespace(run_id=run_id)] for run_id in ("a", "b", "c")]
    work = {"done-before": 1e9, "a": 1e6, "b": 9e6, "c": 90e6}
    progress = SweepProgress.of_launch(4, units, work)
    progress.started("a")
    progress.finished("a", "completed", 10.0, None)
    printed = capsys.readouterr().err
    assert "sweep: 4 runs, 1 already done, 3 to run" in printed
    # 1e6 FLOPs in 10 s; 99e6 left: 990 s (by counts it would be 2 runs x 10 s)
    assert etas(printed) == ["?", str(datetime.timedelta(seconds=990))]


def test_a_cooldown_branch_weighs_only_its_own_steps():
    points = [SimpleNamespace(run_id="trunk"), SimpleNamespace(run_id="branch")]
    plans = [SimpleNamespace(compute=1000.0, num_steps=100, branch_step=None),
             SimpleNamespace(compute=900.0, num_steps=90, branch_step=60)]  # 10 FLOPs a step, 30 steps of its own
    assert planned_work(points, plans) == {"trunk": 1000.0, "branch": 300.0}
