"""evaluate step: score the candidate and the production model on the same test split.

Writes evaluation.json: candidate and production metrics, and whether to register.
"""

import argparse
import json
import pickle
from pathlib import Path

import pandas as pd
from evaluate import PRIMARY_METRIC, is_better, metrics

from amlops.runtime import aliased_version, mlflow_run, model_files

PRODUCTION = "production"


def production_version(client, model_name: str):
    """The version behind the production alias; None when there is none yet; any other
    registry error stops the step with one line (amlops.runtime.aliased_version)."""
    return aliased_version(client, model_name, PRODUCTION, step="evaluate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    pickled, schema_file = model_files(args.model, args.prepared)
    schema = json.loads(schema_file.read_text())
    test = pd.read_csv(args.prepared / "test.csv")
    with open(pickled, "rb") as fh:
        candidate = pickle.load(fh)
    with mlflow_run() as run:
        import mlflow

        production = production_version(mlflow.MlflowClient(), args.model_name)
        current, current_version = None, None
        if production is not None:
            # The version just looked up, not the alias again: it may move meanwhile.
            current_version = production.version
            current = mlflow.sklearn.load_model(f"models:/{args.model_name}/{current_version}")
        candidate_metrics = metrics(candidate, test, schema)
        production_metrics = metrics(current, test, schema) if current is not None else None
        better = is_better(candidate_metrics, production_metrics, schema["task"])
        mlflow.log_metrics(candidate_metrics)
        if production_metrics:
            mlflow.log_metrics({f"production_{k}": v for k, v in production_metrics.items()})
        report = {
            "primary_metric": PRIMARY_METRIC[schema["task"]][0],
            "candidate": candidate_metrics,
            "production": production_metrics,
            "production_version": current_version,
            "register": better,
            "mlflow_run_id": run.info.run_id,
        }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "evaluation.json").write_text(json.dumps(report, indent=2))
    verdict = "better: will register" if better else "not better: keeping production"
    print(f"evaluate: candidate {candidate_metrics} vs production {production_metrics}: {verdict}")


if __name__ == "__main__":
    main()
