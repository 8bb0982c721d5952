"""Files written whole: a write that fails before its rename (disk full, a kill) leaves the old file as it was."""

import os

import pytest

from analysis import files
from analysis.files import write_atomically


def test_a_failed_write_leaves_the_old_file_and_a_finished_one_replaces_it(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old\n")
    real_fsync = os.fsync

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_atomically(path, "new\n")
    assert path.read_text() == "old\n"
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    write_atomically(path, "new\n")
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
