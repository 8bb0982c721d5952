"""`scaling --version` prints the installed suite's version, the one pyproject.toml declares."""

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_version_is_pyprojects():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([sys.executable, "-m", "scaling.cli", "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"scaling {declared}"
