"""The bootstrap resamples whole runs: every row of a run is drawn as often as the run, and runs are drawn with
replacement, as many as there are."""

import numpy as np

from analysis.bootstrap import multiplicities, resample_runs

RUN_IDS = np.array(["a", "a", "a", "b", "b", "c", "d", "d", "d", "d"])


def test_rows_of_one_run_are_drawn_together():
    counts = multiplicities(len(RUN_IDS), 200, np.random.default_rng(0), RUN_IDS)
    for run in np.unique(RUN_IDS):
        rows = counts[:, np.equal(RUN_IDS, run)]
        assert (rows == rows[:, :1]).all(), run  # every row of the run as often as the run
    per_run = np.stack([counts[:, np.equal(RUN_IDS, run)][:, 0] for run in np.unique(RUN_IDS)], axis=1)
    assert (per_run.sum(axis=1) == 4).all()  # 4 runs drawn per resample
    assert (per_run == 0).any() and (per_run >= 2).any()  # with replacement: some left out, some repeated


def test_rows_drawn_one_by_one_split_runs():
    counts = multiplicities(len(RUN_IDS), 200, np.random.default_rng(0), None)
    assert (counts.sum(axis=1) == len(RUN_IDS)).all()
    assert (counts[:, 0] != counts[:, 1]).any()  # rows of run "a" are drawn independently


def test_runs_are_resampled_by_default_wherever_rows_carry_run_ids():
    assert resample_runs(RUN_IDS, None)
    assert not resample_runs(None, None)  # no run ids: rows
    assert not resample_runs(np.array(["a", "a"]), None)  # one run cannot be resampled
    assert not resample_runs(RUN_IDS, False) and resample_runs(RUN_IDS, True)  # as asked
