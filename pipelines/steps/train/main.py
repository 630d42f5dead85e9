"""train step: fit the model on prep's train.csv; writes model.pkl and schema.json.

As a sweep's trial (``--validation_fraction``) it holds out part of train.csv and logs the
validation metrics through MLflow, the primary one at every tenth of the boosting stages, so
an early termination policy has intermediate values to judge. After a sweep (``--best_of``)
it takes the hyperparameters of the best trial in the sweep's metrics_output.
"""

import argparse
import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
from train import Hyperparameters, best_trial_hyperparameters, train, validate, whole_number

from amlops.runtime import mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--n_estimators", type=whole_number, default=200)
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--max_depth", type=whole_number, default=3)
    parser.add_argument("--seed", type=whole_number, default=42)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--validation_fraction", type=float, default=None)
    parser.add_argument("--best_of", type=Path, default=None, help="a sweep's metrics_output")
    parser.add_argument("--primary_metric", default=None, help="with --best_of")
    parser.add_argument("--goal", choices=["maximize", "minimize"], default=None)
    args = parser.parse_args(argv)

    schema = json.loads((args.prepared / "schema.json").read_text())
    hp = Hyperparameters(args.n_estimators, args.learning_rate, args.max_depth, args.seed)
    if args.best_of is not None:
        if not args.primary_metric or not args.goal:
            parser.error("--best_of needs --primary_metric and --goal")
        best = best_trial_hyperparameters(args.best_of, args.primary_metric, args.goal)
        hp = Hyperparameters(**{**vars(hp), **best})
        print(f"train: best trial's hyperparameters {best}")
    frame = pd.read_csv(args.prepared / "train.csv")
    with mlflow_run():
        import mlflow

        mlflow.log_params(vars(hp))
        if args.validation_fraction is not None:
            # Logged as metrics too: metrics_output carries metrics only, and it is where the
            # step after a sweep (here or on Azure) finds the best trial's hyperparameters.
            mlflow.log_metrics({f"hp_{k}": float(v) for k, v in vars(hp).items()})
            model = validate(frame, schema, hp, args.validation_fraction, mlflow.log_metric)
        else:
            model = train(frame, schema, hp)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    shutil.copy(args.prepared / "schema.json", args.output / "schema.json")
    (args.output / "hyperparameters.json").write_text(json.dumps(vars(hp), indent=2))
    print(f"train: fitted {type(model[-1]).__name__} with {vars(hp)}")


if __name__ == "__main__":
    main()
