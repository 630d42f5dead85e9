"""Evaluate a model on held-out data and decide whether it beats the production model."""

from __future__ import annotations

import pandas as pd

# The metric that decides, and whether higher is better.
PRIMARY_METRIC = {"regression": ("rmse", False), "classification": ("accuracy", True)}


def metrics(model, test: pd.DataFrame, schema: dict) -> dict[str, float]:
    from sklearn import metrics as m

    columns = schema["numeric"] + schema["categorical"]
    x = test[columns].astype({c: "object" for c in schema["categorical"]})
    y = test[schema["target"]]
    predicted = model.predict(x)
    if schema["task"] == "regression":
        return {
            "rmse": float(m.root_mean_squared_error(y, predicted)),
            "mae": float(m.mean_absolute_error(y, predicted)),
            "r2": float(m.r2_score(y, predicted)),
        }
    y, predicted = y.astype(str), pd.Series(predicted).astype(str)
    return {
        "accuracy": float(m.accuracy_score(y, predicted)),
        "f1_macro": float(m.f1_score(y, predicted, average="macro")),
    }


def is_better(candidate: dict[str, float], production: dict[str, float] | None, task: str) -> bool:
    """True when there is no production model, or the candidate is strictly better."""
    if production is None:
        return True
    name, higher_is_better = PRIMARY_METRIC[task]
    if higher_is_better:
        return candidate[name] > production[name]
    return candidate[name] < production[name]
