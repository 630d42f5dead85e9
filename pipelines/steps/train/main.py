"""train step: fit the model on prep's train.csv; writes model.pkl and schema.json."""

import argparse
import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
from train import Hyperparameters, train

from amlops.runtime import mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--n_estimators", type=int, default=200)
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    schema = json.loads((args.prepared / "schema.json").read_text())
    hp = Hyperparameters(args.n_estimators, args.learning_rate, args.max_depth, args.seed)
    model = train(pd.read_csv(args.prepared / "train.csv"), schema, hp)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    shutil.copy(args.prepared / "schema.json", args.output / "schema.json")
    (args.output / "hyperparameters.json").write_text(json.dumps(vars(hp), indent=2))
    with mlflow_run():
        import mlflow

        mlflow.log_params(vars(hp))
    print(f"train: fitted {type(model[-1]).__name__} with {vars(hp)}")


if __name__ == "__main__":
    main()
