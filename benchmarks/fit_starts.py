"""Time the vectorised 4,500-start fit of L(N, D) against a plain per-start scipy.optimize.minimize loop.

    python benchmarks/fit_starts.py [--points 400] [--starts K] [--seed 0]

The same as `scaling bench fit` (or `python -m analysis.cli bench-fit`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench-fit", *sys.argv[1:]]))
