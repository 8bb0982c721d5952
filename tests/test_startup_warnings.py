"""Commands start without warnings: importing the trainer (jax, flax, optax, orbax and the checkpoint handler it
registers) writes nothing to stderr."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_importing_the_trainer_prints_no_warning():
    done = subprocess.run([sys.executable, "-c", "import scaling.train"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
