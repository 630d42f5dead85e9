"""score step: a ParallelRunStep entry script that predicts with a registered MLflow model.

``init()`` loads the model once per worker process; ``run()`` gets a DataFrame of scoring rows,
every column text (as Azure ML gives a tabular dataset it did not type), turns the model's
numeric features into numbers, and returns the key column with a ``prediction`` column, so a
user can join predictions back.
Rows missing the key are left out of the result, so they count as failed items and the step's
error_threshold decides how many it tolerates.
"""

import argparse

import pandas as pd

model = None
key_column = "row_id"
feature_columns: list[str] | None = None
numeric_columns: list[str] = []


def model_uri(name: str, version: str) -> str:
    """A number or ``latest`` is a version; anything else (``production``) is an alias."""
    if version.isdigit() or version == "latest":
        return f"models:/{name}/{version}"
    return f"models:/{name}@{version}"


def numeric_features(fitted) -> list[str]:
    """The columns the train step's model imputes as numbers (its "numeric" transformer)."""
    steps = getattr(fitted, "named_steps", {})
    preprocess = steps.get("preprocess")
    return [
        str(c)
        for name, _, columns in getattr(preprocess, "transformers_", [])
        if name == "numeric"
        for c in columns
    ]


def init() -> None:
    global model, key_column, feature_columns
    parser = argparse.ArgumentParser(description="batch scoring entry script")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_version", default="production")
    parser.add_argument("--key_column", default="row_id")
    # The driver may add its own arguments; AML entry scripts ignore what they do not know.
    args, _ = parser.parse_known_args()
    import mlflow.sklearn  # MLFLOW_TRACKING_URI comes from the step's environment

    uri = model_uri(args.model_name, str(args.model_version))
    model = mlflow.sklearn.load_model(uri)
    key_column = args.key_column
    names = getattr(model, "feature_names_in_", None)
    feature_columns = [str(c) for c in names] if names is not None else None
    numeric_columns[:] = numeric_features(model)
    print(f"score: loaded {uri}; key column {key_column!r}", flush=True)


def run(mini_batch: pd.DataFrame) -> pd.DataFrame:
    if key_column not in mini_batch.columns:
        raise KeyError(
            f"key column {key_column!r} is not in the scoring data "
            f"(columns: {', '.join(map(str, mini_batch.columns))})"
        )
    rows = mini_batch[mini_batch[key_column].notna()]
    keys = rows[key_column]  # as written: the rows arrive as text, on Azure ML as here
    rows = rows.astype({c: "float64" for c in numeric_columns if c in rows.columns})
    if feature_columns is not None:
        missing = [c for c in feature_columns if c not in rows.columns]
        if missing:
            raise KeyError(f"the model needs columns the scoring data lacks: {missing}")
        features = rows[feature_columns]
    else:
        features = rows.drop(columns=[key_column])
    return pd.DataFrame({key_column: keys, "prediction": model.predict(features)})
