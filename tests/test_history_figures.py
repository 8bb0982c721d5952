"""The history figures the README publishes, pinned. The expected numbers are the README's published values
(section 'History of ImageNet accuracy'), not outputs of the code: `scaling history fit` with its defaults
(1,000 bootstrap resamples of models, seed 0, 95%) on the shipped record must reproduce each of them to the
README's rounding. If the record or the fit moves one, the README and this file change together."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from analysis.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
# (trend, group, headline quantity): the README's value and 95% interval as printed there (None: not printed)
PUBLISHED = {
    ("compute", "imagenet-1k", "compute_per_error_halving"): ("105", "44", "1.6e5"),
    ("progress", "imagenet-1k", "compute_halving_months"): ("15", "6.5", "75"),
    ("time", "ilsvrc-winners", "error_halving_years"): ("1.8", None, None),
}
README_SENTENCES = (
    "each halving of top-1 error cost ×105 (95% CI ×44 to ×1.6e5) training compute for ImageNet-1k-only",
    "the compute-halving time from algorithms is 15 months (95% CI 6.5-75)",
    "top-5 error halved every 1.8 years. Sixteen models with known compute",
)


@pytest.fixture(scope="module")
def trends(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """The trends `scaling history fit` writes with its defaults, by (trend, group)."""
    path = tmp_path_factory.mktemp("history") / "history_fit.json"
    assert main(["history", "fit", "--json", str(path)]) == 0
    return {(record["trend"], record["group"]): record for record in json.loads(path.read_text())["trends"]}


def rounds_to(value: float, published: str) -> bool:
    """Whether `value`, rounded as `published` is printed (to its last digit), gives `published`."""
    half_unit = 0.5 * 10.0 ** Decimal(published).as_tuple().exponent
    return abs(value - float(published)) <= half_unit


def test_the_readme_still_publishes_the_pinned_figures():
    text = " ".join(README.read_text().split())  # the README wraps lines
    for sentence in README_SENTENCES:
        assert sentence in text, sentence


@pytest.mark.parametrize("trend, group, quantity", sorted(PUBLISHED))
def test_history_fit_reproduces_the_readme_figure(trends, trend, group, quantity):
    estimate = trends[(trend, group)]["headline"][quantity]
    for computed, published in zip((estimate["value"], estimate["low"], estimate["high"]),
                                   PUBLISHED[(trend, group, quantity)]):
        if published is not None:
            assert rounds_to(computed, published), (quantity, computed, published)


def test_sixteen_models_with_known_compute_are_fitted(trends):
    record = trends[("compute", "imagenet-1k")]
    assert record["num_points"] == 16 and len(record["models"]) == 16
    assert record["bootstrap"]["resamples"] == 1000 and record["bootstrap"]["confidence"] == 0.95


def test_rounds_to_reads_the_printed_precision():
    assert rounds_to(104.86, "105") and not rounds_to(105.6, "105")
    assert rounds_to(1.603e5, "1.6e5") and not rounds_to(1.66e5, "1.6e5")
    assert rounds_to(6.46, "6.5") and not rounds_to(6.44, "6.5")
