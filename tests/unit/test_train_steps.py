"""The train pipeline's ML logic as pure functions: prep, train, evaluate."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

STEPS = Path(__file__).resolve().parents[2] / "pipelines" / "steps"


def load(step: str, module: str):
    spec = importlib.util.spec_from_file_location(
        f"step_{step}_{module}", STEPS / step / f"{module}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


prep = load("prep", "prep")
train = load("train", "train")
evaluate = load("evaluate", "evaluate")


@pytest.fixture
def messy() -> pd.DataFrame:
    """A user's CSV: a categorical string column, missing values, a row with no target."""
    rng = np.random.default_rng(0)
    n = 120
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    size = rng.normal(10, 2, n)
    frame = pd.DataFrame(
        {
            "colour": colour,
            "size": size,
            "empty": [None] * n,
            "label": np.where((colour == "red") | (size > 11), "yes", "no"),
        }
    )
    frame.loc[3, "size"] = np.nan
    frame.loc[5, "colour"] = None
    frame.loc[7, "label"] = None
    return frame


def test_clean_drops_rows_without_target_and_empty_columns(messy):
    cleaned = prep.clean(messy, "label", "classification")
    assert len(cleaned) == len(messy) - 1
    assert "empty" not in cleaned.columns
    assert cleaned["size"].isna().sum() == 1  # features keep their gaps for the imputer


def test_clean_names_a_missing_target_column(messy):
    with pytest.raises(ValueError, match="target column 'price'"):
        prep.clean(messy, "price", "regression")


def test_clean_regression_drops_non_numeric_targets():
    frame = pd.DataFrame({"x": range(12), "y": ["1", "2", "n/a"] + [str(i) for i in range(9)]})
    assert len(prep.clean(frame, "y", "regression")) == 11


def test_split_is_seeded_and_stratified(messy):
    cleaned = prep.clean(messy, "label", "classification")
    a_train, a_test = prep.split(cleaned, "label", "classification", 0.25, 7)
    b_train, b_test = prep.split(cleaned, "label", "classification", 0.25, 7)
    _, c_test = prep.split(cleaned, "label", "classification", 0.25, 8)
    pd.testing.assert_frame_equal(a_test, b_test)
    assert not a_test.equals(c_test)
    assert len(a_test) == round(len(cleaned) * 0.25)
    share = cleaned["label"].value_counts(normalize=True)
    test_share = a_test["label"].value_counts(normalize=True)
    assert abs(share["yes"] - test_share["yes"]) < 0.05


def test_feature_types_split_numeric_and_categorical(messy):
    cleaned = prep.clean(messy, "label", "classification")
    assert prep.feature_types(cleaned, "label") == {"numeric": ["size"], "categorical": ["colour"]}


def test_model_handles_categoricals_missing_values_and_unseen_categories(messy):
    cleaned = prep.clean(messy, "label", "classification")
    schema = {"target": "label", "task": "classification", **prep.feature_types(cleaned, "label")}
    tr, te = prep.split(cleaned, "label", "classification", 0.25, 1)
    model = train.train(tr, schema, train.Hyperparameters(n_estimators=30))
    scores = evaluate.metrics(model, te, schema)
    assert scores["accuracy"] > 0.8
    unseen = pd.DataFrame({"colour": ["purple", None], "size": [np.nan, 12.0]})
    assert len(model.predict(train.features(unseen, schema))) == 2


def test_regression_metrics_and_hyperparameters_matter():
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    schema = {"target": "target", "task": "regression", **prep.feature_types(frame, "target")}
    tr, te = prep.split(frame, "target", "regression", 0.2, 42)
    weak = evaluate.metrics(
        train.train(tr, schema, train.Hyperparameters(n_estimators=1)), te, schema
    )
    strong = evaluate.metrics(train.train(tr, schema, train.Hyperparameters()), te, schema)
    assert set(strong) == {"rmse", "mae", "r2"}
    assert strong["rmse"] < weak["rmse"]


@pytest.mark.parametrize(
    ("candidate", "production", "task", "better"),
    [
        ({"rmse": 5.0}, None, "regression", True),
        ({"rmse": 5.0}, {"rmse": 6.0}, "regression", True),
        ({"rmse": 6.0}, {"rmse": 6.0}, "regression", False),  # a tie keeps production
        ({"rmse": 7.0}, {"rmse": 6.0}, "regression", False),
        ({"accuracy": 0.9}, {"accuracy": 0.8}, "classification", True),
        ({"accuracy": 0.8}, {"accuracy": 0.9}, "classification", False),
    ],
)
def test_is_better_uses_the_primary_metric(candidate, production, task, better):
    assert evaluate.is_better(candidate, production, task) is better


@pytest.mark.parametrize(("given", "parsed"), [("150", 150), ("150.0", 150), ("-1", -1)])
def test_integer_hyperparameters_accept_a_sweeps_float_spelling(given, parsed):
    assert train.whole_number(given) == parsed


@pytest.mark.parametrize("given", ["150.5", "many"])
def test_integer_hyperparameters_refuse_what_is_not_whole(given):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match=repr(given)):
        train.whole_number(given)
