"""The shipped record of ImageNet accuracy: every row sourced, in consistent units, with compute that agrees
with its stated derivation; and bad history tables refused with a message naming the row and the fix."""

import ast
import operator

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.history.table import EXTRA_DATA, HISTORY_TABLE, NOT_FITTED, PROTOCOLS, fit_rows, load_history

IMAGENET_TRAIN = 1.2e6  # images, rounded down
MIN_EPOCHS = 10  # no row trained for less than this many ImageNet-1k epochs' worth of compute
COMPUTE_METHODS = {"analytic", "reported", "hardware", "estimate"}


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return load_history()


def evaluate(formula: str) -> float:
    """The value of an arithmetic formula of numbers, + and * (nothing else is accepted)."""
    operations = {ast.Add: operator.add, ast.Mult: operator.mul}

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in operations:
            return operations[type(node.op)](walk(node.left), walk(node.right))
        raise AssertionError(f"compute_formula {formula!r} holds something other than numbers, + and *")

    return walk(ast.parse(formula, mode="eval"))


def test_the_table_ships_inside_the_package_with_its_conventions():
    assert HISTORY_TABLE.is_file() and (HISTORY_TABLE.parent / "README.md").is_file()
    assert "1 multiply-add = 2 FLOPs" in (HISTORY_TABLE.parent / "README.md").read_text()


def test_every_row_has_a_source_a_known_category_and_a_parsable_date(history):
    assert len(history) >= 60
    assert (history["source"].str.len() > 10).all() and (history["model"] != "").all()
    assert set(history["protocol"]) <= set(PROTOCOLS) and set(history["extra_data"]) <= set(EXTRA_DATA)
    assert set(history["verification"]) <= {"high", "medium", "low"}
    dated = history[history["date"].notna()]
    dates = pd.to_datetime(dated["date"], format="%Y-%m-%d")
    assert (dates.dt.year == dated["year"]).all()
    assert history["year"].between(2010, 2025).all()
    assert history.loc[history["kind"] == "model", "date"].notna().all()


def test_errors_are_fractions_and_top5_is_below_top1_by_a_plausible_factor(history):
    for column in ("top1_error", "top5_error"):
        values = history[column].dropna()
        assert ((values > 0) & (values < 1)).all(), column
    both = history.dropna(subset=["top1_error", "top5_error"])
    ratio = both["top5_error"] / both["top1_error"]
    assert len(both) >= 25
    assert ratio.between(0.05, 0.65).all(), both.loc[~ratio.between(0.05, 0.65), "model"].tolist()


def test_parameters_and_multiply_adds_are_positive_and_plausible_per_architecture(history):
    assert (history["params"].dropna() > 1e6).all()
    sized = history.dropna(subset=["params", "forward_macs"])
    per_param = sized["forward_macs"] / sized["params"]  # a GMACs/MACs mix-up would be off by 1e3
    assert per_param.between(5, 3000).all(), sized.loc[~per_param.between(5, 3000), "model"].tolist()
    assert history.loc[history["forward_macs"].notna(), "macs_resolution"].notna().all()
    resnet50 = history.set_index("model").loc["ResNet-50"]
    assert resnet50["params"] == pytest.approx(25.6e6) and resnet50["forward_macs"] == pytest.approx(3.8e9)


def test_analytic_compute_equals_its_formula_and_every_method_is_stated(history):
    with_compute = history[history["compute"].notna()]
    assert len(with_compute) >= 30
    assert set(with_compute["compute_method"]) <= COMPUTE_METHODS
    assert history.loc[history["compute"].isna(), "compute_method"].isna().all()
    analytic = with_compute[with_compute["compute_method"] == "analytic"]
    assert len(analytic) >= 15
    for _, row in analytic.iterrows():
        assert evaluate(row["compute_formula"]) == pytest.approx(row["compute"], rel=1e-3), row["model"]
        assert row["compute_formula"].startswith("6*"), row["model"]  # 2 FLOPs per multiply-add x 3 (fwd + bwd)


def test_compute_covers_at_least_a_few_epochs_of_forward_and_backward(history):
    rows = history.dropna(subset=["compute", "forward_macs", "macs_resolution"])
    train_macs = rows["forward_macs"] * np.minimum(1.0, (224.0 / rows["macs_resolution"]) ** 2)
    least = 2 * 3 * train_macs * IMAGENET_TRAIN * MIN_EPOCHS
    assert (rows["compute"] >= least).all(), rows.loc[rows["compute"] < least, "model"].tolist()
    resnet50 = history.set_index("model").loc["ResNet-50"]
    assert resnet50["compute"] == pytest.approx(2 * 3.8e9 * 3 * 256 * 600e3, rel=1e-3)  # not 1 FLOP per MAC


def test_ilsvrc_winners_one_a_year_falling_below_the_human_estimate(history):
    winners = history[history["kind"] == "ilsvrc-winner"].sort_values("year")
    assert winners["year"].tolist() == list(range(2010, 2018))
    assert (np.diff(winners["top5_error"]) < 0).all()
    assert winners["top5_error"].iloc[[0, -1]].tolist() == [pytest.approx(0.282), pytest.approx(0.02251)]
    human = history[history["kind"] == "human"]
    assert human["top5_error"].tolist() == [pytest.approx(0.051)]
    assert winners.loc[winners["year"] == 2012, "extra_data"].item() == "imagenet-21k"


def test_fit_rows_leave_out_zero_shot_probes_and_ensembles_and_split_by_extra_data(history):
    own = fit_rows(history, "imagenet-1k", needs=("compute",))
    extra = fit_rows(history, "extra-data", needs=("compute",))
    for rows in (own, extra):
        assert not rows["protocol"].isin(NOT_FITTED).any() and rows["compute"].notna().all()
        assert len(rows) >= 12
    assert set(own["extra_data"]) == {"none"} and "none" not in set(extra["extra_data"])
    assert "CLIP ViT-L/14@336" in set(history["model"]) and "CLIP ViT-L/14@336" not in set(extra["model"])


@pytest.mark.parametrize("column, value, message", [
    ("top1_error", 24.7, "is not a fraction in (0, 1)"),
    ("date", "2015/12/10", "is not YYYY-MM-DD"),
    ("extra_data", "JFT", "extra_data 'JFT' is not one of"),
    ("source", "", "no source"),
])
def test_a_bad_history_table_is_refused_naming_the_row(tmp_path, column, value, message):
    frame = pd.read_csv(HISTORY_TABLE, keep_default_na=False, na_values=[""])
    frame[column] = frame[column].astype(object)
    frame.loc[frame["model"] == "ResNet-50", column] = value
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(AnalysisError, match="ResNet-50") as error:
        load_history(path)
    assert message in str(error.value)


def test_a_missing_history_table_names_the_fix(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist; leave out --table"):
        load_history(tmp_path / "nowhere.csv")
