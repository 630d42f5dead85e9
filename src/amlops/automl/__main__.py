"""``python -m amlops.automl --config JSON``: run one AutoMLStep with FLAML, Microsoft's AutoML
library, as the local stand-in for Azure ML's AutoML service (not the same search).

Budget (experiment_timeout_minutes, iterations, iteration_timeout_minutes), Azure's primary
metric (computed here under its Azure name), cross-validation or a validation split and early
stopping map onto FLAML's settings. The best model is written as the train step writes its
model (model.pkl: a scikit-learn Pipeline taking raw feature columns, and schema.json), so
evaluate and register take it unchanged; metrics_output holds every iteration's metrics in
the shape v1's TrainingOutput(type="Metrics") has (run id -> metric -> values), for the best
iteration: FLAML keeps the metrics of the best configuration only.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

# Azure model name -> FLAML estimator (GradientBoosting: FLAML's histogram gradient boosting).
ESTIMATORS = {
    "LogisticRegression": "lrl2",
    "RandomForest": "rf",
    "ExtremeRandomTrees": "extra_tree",
    "GradientBoosting": "histgb",
    "XGBoostClassifier": "xgboost",
    "XGBoostRegressor": "xgboost",
    "KNN": "kneighbor",
    "SGD": "sgd",
    "ElasticNet": "enet",
    "LassoLars": "lassolars",
}
# Tried when allowed_models is empty: scikit-learn's own, which register's skops format reads.
DEFAULT_MODELS = {
    "classification": (
        "LogisticRegression", "RandomForest", "ExtremeRandomTrees", "GradientBoosting",
    ),
    "regression": ("RandomForest", "ExtremeRandomTrees", "GradientBoosting", "ElasticNet"),
}  # fmt: skip
HIGHER_IS_BETTER = {
    "accuracy": True, "AUC_weighted": True, "average_precision_score_weighted": True,
    "norm_macro_recall": True, "precision_score_weighted": True, "r2_score": True,
    "spearman_correlation": True, "normalized_root_mean_squared_error": False,
    "normalized_mean_absolute_error": False,
}  # fmt: skip


def azure_metrics(task: str, y, predicted, proba=None, classes=None) -> dict[str, float]:
    """Azure ML's primary metrics by their Azure names, as its docs define them."""
    import numpy as np
    from sklearn import metrics as m

    if task == "regression":
        span = float(np.max(y) - np.min(y)) or 1.0
        from scipy.stats import spearmanr

        return {
            "normalized_root_mean_squared_error": float(
                m.root_mean_squared_error(y, predicted) / span
            ),
            "normalized_mean_absolute_error": float(m.mean_absolute_error(y, predicted) / span),
            "r2_score": float(m.r2_score(y, predicted)),
            "spearman_correlation": float(spearmanr(y, predicted).statistic),
        }
    n = len(classes) if classes is not None else len(set(y))
    recall = m.recall_score(y, predicted, average="macro", zero_division=0)
    found = {
        "accuracy": float(m.accuracy_score(y, predicted)),
        # (recall - R) / (1 - R), R = 1/n: 0 is random, 1 is perfect (Azure's definition).
        "norm_macro_recall": float((recall - 1 / n) / (1 - 1 / n)) if n > 1 else 0.0,
        "precision_score_weighted": float(
            m.precision_score(y, predicted, average="weighted", zero_division=0)
        ),
    }
    if proba is not None and classes is not None and n > 1:
        from sklearn.preprocessing import label_binarize

        onehot = label_binarize(y, classes=list(classes))
        if n == 2:
            onehot = np.hstack([1 - onehot, onehot])
        try:
            found["AUC_weighted"] = float(m.roc_auc_score(onehot, proba, average="weighted"))
        except ValueError:  # a class missing from this fold
            found["AUC_weighted"] = float("nan")
        found["average_precision_score_weighted"] = float(
            m.average_precision_score(onehot, proba, average="weighted")
        )
    return found


def feature_types(frame, target: str) -> dict[str, list[str]]:
    import pandas as pd

    features = frame.drop(columns=[target])
    numeric = [
        c
        for c in features.columns
        if pd.api.types.is_numeric_dtype(features[c])
        and not pd.api.types.is_bool_dtype(features[c])
    ]
    return {"numeric": numeric, "categorical": [c for c in features.columns if c not in numeric]}


def preprocessor(schema: dict):
    """The train step's preprocessing (median impute; impute + one-hot), so the written model
    takes raw feature columns as the train step's does."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    return ColumnTransformer(
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--config":
        print("usage: python -m amlops.automl --config JSON", file=sys.stderr)
        return 2
    cfg = json.loads(argv[1])
    import pandas as pd

    data = Path(cfg["training_data"])
    file = data / cfg["training_file"] if data.is_dir() else data
    if not file.is_file():
        print(f"amlops.automl: error: no {cfg['training_file']} in {data}", file=sys.stderr)
        return 2
    frame = pd.read_csv(file)
    task, label, metric = cfg["task"], cfg["label_column_name"], cfg["primary_metric"]
    if label not in frame.columns:
        print(
            f"amlops.automl: error: label_column_name {label!r} is not a column of {file.name} "
            f"({', '.join(frame.columns)})",
            file=sys.stderr,
        )
        return 2
    frame = frame.dropna(subset=[label])
    if task == "classification":
        frame[label] = frame[label].astype(str)
    schema = {"target": label, "task": task, **feature_types(frame, label)}
    columns = schema["numeric"] + schema["categorical"]
    x_raw = frame[columns].astype({c: "object" for c in schema["categorical"]})
    y = frame[label]
    prep = preprocessor(schema)
    x = prep.fit_transform(x_raw)

    allowed = cfg["allowed_models"] or list(DEFAULT_MODELS[task])
    models = [m for m in allowed if m not in cfg["blocked_models"]]
    estimators = list(dict.fromkeys(ESTIMATORS[m] for m in models))
    higher = HIGHER_IS_BETTER[metric]
    history: list[dict[str, float]] = []

    def score(x_val, y_val, estimator, labels, *args, **kwargs):
        predicted = estimator.predict(x_val)
        proba = None
        if task == "classification" and hasattr(estimator, "predict_proba"):
            try:
                proba = estimator.predict_proba(x_val)
            except Exception:  # an estimator without probabilities (SGD with hinge loss)
                proba = None
        values = azure_metrics(task, y_val, predicted, proba, labels)
        value = values.get(metric, float("nan"))
        loss = -value if higher else value
        return (loss if loss == loss else float("inf")), values

    from flaml import AutoML

    automl = AutoML()
    settings: dict[str, Any] = {
        "task": task,
        "metric": score,
        "estimator_list": estimators,
        "time_budget": 60 * cfg["experiment_timeout_minutes"],
        "max_iter": cfg["iterations"],
        "early_stop": cfg["enable_early_stopping"],
        "seed": cfg["seed"],
        "verbose": 0,
        "mlflow_logging": False,  # the step logs its own run; FLAML would log every model
        # FLAML runs trials one at a time without ray: Azure's concurrent iterations become
        # the threads each model may use, bounded by the cores.
        "n_jobs": max(1, min(cfg["max_concurrent_iterations"], os.cpu_count() or 1)),
    }
    if cfg.get("iteration_timeout_minutes"):
        settings["train_time_limit"] = 60 * cfg["iteration_timeout_minutes"]
    if cfg.get("n_cross_validations"):
        settings.update(eval_method="cv", n_splits=cfg["n_cross_validations"])
    elif cfg.get("validation_size"):
        settings.update(eval_method="holdout", split_ratio=cfg["validation_size"])
    import mlflow

    from amlops.runtime import mlflow_run

    start = time.time()
    with mlflow_run({"amlops.automl": "flaml"}) as run:
        automl.fit(x, y, **settings)
        for record in automl.config_history.values():
            history.append({"estimator": record[0], "config": record[1]})
        best_metrics = dict(automl.best_result.get("metric_for_logging") or {})
        best_metrics = {k: float(v) for k, v in best_metrics.items() if k in HIGHER_IS_BETTER}
        mlflow.log_metrics(best_metrics)
        mlflow.log_params({"best_estimator": automl.best_estimator, "estimators": estimators})
        run_id = run.info.run_id
    from sklearn.pipeline import Pipeline

    # FLAML refits the best configuration on all the training rows (retrain_full).
    model = Pipeline([("preprocess", prep), ("model", automl.model.estimator)])
    out = Path(cfg["model_output"])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    (out / "schema.json").write_text(json.dumps(schema, indent=2))
    best = {
        "best_estimator": automl.best_estimator,
        "best_config": {k: _plain(v) for k, v in automl.best_config.items()},
        "primary_metric": metric,
        "value": best_metrics.get(metric),
        "iterations": len(history),
        "search": "FLAML (local stand-in for Azure ML AutoML)",
    }
    (out / "automl.json").write_text(json.dumps(best, indent=2))
    if cfg.get("metrics_output"):
        metrics_dir = Path(cfg["metrics_output"])
        metrics_dir.mkdir(parents=True, exist_ok=True)
        # v1's shape; the best iteration is the one whose metrics FLAML kept.
        document = {f"AutoML_{run_id}_best": {k: [v] for k, v in best_metrics.items()}}
        (metrics_dir / "metrics.json").write_text(json.dumps(document, indent=1))
    summary = {**best, "duration_s": round(time.time() - start, 3), "estimators": estimators}
    Path(cfg["summary"]).write_text(json.dumps(summary, indent=2))
    print(
        f"automl: best {automl.best_estimator} {metric}={best['value']}, {len(history)} iterations"
    )
    return 0


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    sys.exit(main())
