"""Train a model: preprocessing and estimator in one sklearn Pipeline, so scoring needs no prep."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Hyperparameters:
    n_estimators: int = 200
    learning_rate: float = 0.05
    max_depth: int = 3
    seed: int = 42


HYPERPARAMETERS = {f.name: f.type for f in fields(Hyperparameters)}
# What a trial logs on its validation split, and which way is better.
VALIDATION_METRICS = {
    "regression": {"val_rmse": "minimize", "val_mae": "minimize", "val_r2": "maximize"},
    "classification": {"val_accuracy": "maximize", "val_f1_macro": "maximize"},
}


def build_model(schema: dict, hp: Hyperparameters):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    preprocess = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), schema["numeric"]),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                schema["categorical"],
            ),
        ]
    )
    estimator_cls = (
        GradientBoostingRegressor if schema["task"] == "regression" else GradientBoostingClassifier
    )
    estimator = estimator_cls(
        n_estimators=hp.n_estimators,
        learning_rate=hp.learning_rate,
        max_depth=hp.max_depth,
        random_state=hp.seed,
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def features(frame: pd.DataFrame, schema: dict) -> pd.DataFrame:
    columns = schema["numeric"] + schema["categorical"]
    return frame[columns].astype({c: "object" for c in schema["categorical"]})


def train(frame: pd.DataFrame, schema: dict, hp: Hyperparameters):
    """Fit on the training split; the returned model takes raw feature columns."""
    model = build_model(schema, hp)
    model.fit(features(frame, schema), frame[schema["target"]])
    return model


def _scores(task: str, y, predicted) -> dict[str, float]:
    from sklearn import metrics as m

    if task == "regression":
        return {
            "val_rmse": float(m.root_mean_squared_error(y, predicted)),
            "val_mae": float(m.mean_absolute_error(y, predicted)),
            "val_r2": float(m.r2_score(y, predicted)),
        }
    y, predicted = pd.Series(y).astype(str), pd.Series(predicted).astype(str)
    return {
        "val_accuracy": float(m.accuracy_score(y, predicted)),
        "val_f1_macro": float(m.f1_score(y, predicted, average="macro")),
    }


def validate(
    frame: pd.DataFrame,
    schema: dict,
    hp: Hyperparameters,
    fraction: float,
    log: Callable[..., None],
):
    """Fit on all but ``fraction`` of the rows and log the validation metrics: the primary ones
    at each tenth of the boosting stages (``log(name, value, step=i)``), then all at the end."""
    from sklearn.model_selection import train_test_split

    fit, held = train_test_split(frame, test_size=fraction, random_state=hp.seed)
    model = train(fit, schema, hp)
    task = schema["task"]
    x, y = model[0].transform(features(held, schema)), held[schema["target"]]
    every = max(1, hp.n_estimators // 10)
    for stage, predicted in enumerate(model[-1].staged_predict(x), start=1):
        if stage % every == 0 or stage == hp.n_estimators:
            for name, value in _scores(task, y, predicted).items():
                log(name, value, step=stage)
    return model


def whole_number(text: str) -> int:
    """An integer argument as a sweep may send it: ``150`` or ``150.0``. HyperDrive's quantized
    expressions (quniform, ...) are hyperopt's, which yield floats for integral values."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def best_trial_hyperparameters(metrics: Path, primary: str, goal: str) -> dict:
    """The hyperparameters the best trial logged (``hp_<name>``), from a sweep's metrics_output:
    a JSON file, or a folder holding one, mapping run id -> metric -> logged values."""
    file = metrics if metrics.is_file() else next(iter(sorted(metrics.glob("*.json"))), None)
    if file is None:
        raise SystemExit(f"train: no metrics JSON in {metrics}")
    runs = json.loads(file.read_text())
    scored = {run: values[primary][-1] for run, values in runs.items() if values.get(primary)}
    if not scored:
        raise SystemExit(f"train: no trial in {file} logged {primary!r}")
    pick = max if goal == "maximize" else min
    best = pick(sorted(scored), key=lambda run: scored[run])
    return {
        name: cast(runs[best][f"hp_{name}"][-1])
        for name, cast in ((n, {"int": int, "float": float}[t]) for n, t in HYPERPARAMETERS.items())
        if f"hp_{name}" in runs[best]
    }
