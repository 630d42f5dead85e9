"""Train a model: preprocessing and estimator in one sklearn Pipeline, so scoring needs no prep."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Hyperparameters:
    n_estimators: int = 200
    learning_rate: float = 0.05
    max_depth: int = 3
    seed: int = 42


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
