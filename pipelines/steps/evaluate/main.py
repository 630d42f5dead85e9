"""evaluate step: score the candidate and the production model on the same test split.

Writes evaluation.json: candidate and production metrics, and whether to register.
"""

import argparse
import json
import pickle
from pathlib import Path

import pandas as pd
from evaluate import PRIMARY_METRIC, is_better, metrics

from amlops.runtime import mlflow_run

PRODUCTION = "production"


def production_version(client, model_name: str):
    """The model version behind the ``production`` alias, or None when the registry says there
    is none yet. Any other registry error (no permission, an alias API the registry lacks, a
    network failure) exits the step with one line: promoting a candidate because production
    could not be read would replace a model nobody compared it with."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        INVALID_PARAMETER_VALUE,
        RESOURCE_DOES_NOT_EXIST,
        ErrorCode,
    )

    try:
        return client.get_model_version_by_alias(model_name, PRODUCTION)
    except MlflowException as e:
        error = e
    if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
        return None  # no registered model of that name
    if error.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE):
        # MLflow's stores report a registered model without that alias as
        # INVALID_PARAMETER_VALUE, the code of a malformed request too: ask the model.
        try:
            aliases = client.get_registered_model(model_name).aliases
        except MlflowException as e:
            error = e
        else:
            if PRODUCTION not in aliases:
                return None
    message = " ".join(str(error.message).split())  # one line, whatever the server sent
    if not message.startswith(f"{error.error_code}:"):  # REST errors already lead with it
        message = f"{error.error_code}: {message}"
    raise SystemExit(
        f"evaluate: cannot read the {PRODUCTION} model of {model_name!r} from the MLflow "
        f"registry: {message}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    schema = json.loads((args.model / "schema.json").read_text())
    test = pd.read_csv(args.prepared / "test.csv")
    with open(args.model / "model.pkl", "rb") as fh:
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
