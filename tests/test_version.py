"""`scaling --version` prints the installed suite's version, the one pyproject.toml declares."""

import tomllib
from pathlib import Path

import pytest


def test_version_is_pyprojects(capsys):
    from scaling.cli import main

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"scaling {declared}"
