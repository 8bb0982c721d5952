"""`scaling --version` prints the installed suite's version, the one pyproject.toml declares."""

import tomllib
from pathlib import Path

import pytest

from scaling.cli import main

REPO = Path(__file__).parents[1]


def test_version_is_pyprojects(capsys):
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"scaling {declared}"
