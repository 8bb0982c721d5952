"""The main job (experiments/demo.py) is designed as a scaling study: separate cosine runs at 3 or more compute
budgets, at least 6 widths in all, and every budget's widths bracket its optimum (IsoFLOP needs all three); and a
data axis of nested subsets smaller than the training split, at one budget, for widths below its optimum (models
that budget trains about to convergence)."""

import itertools
import math

from scaling.sweep.spec import load_sweep

DEMO = "experiments/demo.py"
ISOFLOP_TOLERANCE = 0.1  # budgets closer than 10% would be one IsoFLOP cluster
DIGITS_TRAIN_EXAMPLES = 1437  # the digits' train split: 80% of sklearn's 1,797 images (stratified)
# the best width at three budgets in a pilot of this demo (widths 1-16, batch 64, read off its results by hand):
# 1.1e9 FLOPs: widths 2 and 3 tie (12.5% error), 3.3e9: width 4 (4.2%), 1e10: width 6 (1.9%)
PILOT_OPTIMA = ((1.1e9, 2.5), (3.3e9, 4.0), (1e10, 6.0))


def pilot_optimum(flops: float) -> float:
    """The pilot's best width at `flops`: a straight line in log-log between its neighbouring budgets."""
    below = max([p for p in PILOT_OPTIMA if p[0] <= flops], default=PILOT_OPTIMA[0])
    above = min([p for p in PILOT_OPTIMA if p[0] >= flops], default=PILOT_OPTIMA[-1])
    if below == above:
        return below[1]
    t = math.log(flops / below[0]) / math.log(above[0] / below[0])
    return below[1] * (above[1] / below[1]) ** t


def test_pilot_optimum_interpolates_in_log_log():
    assert pilot_optimum(3.3e9) == 4.0
    assert math.isclose(pilot_optimum(math.sqrt(3.3e9 * 1e10)), math.sqrt(4.0 * 6.0))


def test_demo_is_cosine_runs_at_budgets_that_bracket_their_optima():
    sweep = load_sweep(DEMO)
    settings = [dict(text.split("=", 1) for text in point.overrides) for point in sweep.points]
    assert all(point.after is None for point in sweep.points)  # no constant-LR trunks: no fake budget
    assert all(s.get("optim.schedule", "'cosine'") == "'cosine'" for s in settings)
    widths_at: dict[float, list[int]] = {}
    for s in settings:
        if "data.train_examples" in s:
            continue  # the data axis (below)
        widths_at.setdefault(float(s["train.flops"]), []).append(int(s["model.width"]))
    budgets = sorted(widths_at)
    assert len(budgets) >= 3
    assert all(math.log(high / low) > math.log1p(ISOFLOP_TOLERANCE) for low, high in itertools.pairwise(budgets))
    assert len({width for widths in widths_at.values() for width in widths}) >= 6
    for flops, widths in widths_at.items():
        best = pilot_optimum(flops)
        assert len(set(widths)) == len(widths) >= 5
        assert sum(w < best for w in widths) >= 2 and sum(w > best for w in widths) >= 2, (flops, widths, best)


def test_demo_has_a_data_axis_of_nested_subsets_at_one_budget():
    sweep = load_sweep(DEMO)
    settings = [dict(text.split("=", 1) for text in point.overrides) for point in sweep.points]
    axis = [s for s in settings if "data.train_examples" in s]
    sizes = sorted({int(s["data.train_examples"]) for s in axis})
    widths = sorted({int(s["model.width"]) for s in axis})
    budgets = {float(s["train.flops"]) for s in axis}
    assert len(sizes) >= 3 and sizes[-1] < DIGITS_TRAIN_EXAMPLES
    assert all(high >= 2 * low for low, high in itertools.pairwise(sizes))  # a factor of 2 or more apart
    assert len(budgets) == 1
    (flops,) = budgets
    best = pilot_optimum(flops)
    assert max(widths) < best and len(widths) >= 3
    assert len(axis) == len(sizes) * len(widths)  # the full grid
    full = {int(s["model.width"]) for s in settings
            if "data.train_examples" not in s and float(s["train.flops"]) == flops}
    assert set(widths) <= full  # each width also ran on the whole training split at that budget
