"""prep step: read the dataset, clean it, split it; writes train.csv, test.csv, schema.json."""

import argparse
import json
from pathlib import Path

from prep import clean, feature_types, read_table, split

from amlops.runtime import context, mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder or CSV file")
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", choices=["regression", "classification"], required=True)
    parser.add_argument("--test_size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    frame = clean(read_table(args.data), args.target, args.task)
    train, test = split(frame, args.target, args.task, args.test_size, args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    train.to_csv(args.output / "train.csv", index=False)
    test.to_csv(args.output / "test.csv", index=False)
    schema = {"target": args.target, "task": args.task, **feature_types(frame, args.target)}
    (args.output / "schema.json").write_text(json.dumps(schema, indent=2))
    with mlflow_run():
        import mlflow

        mlflow.log_params({"target": args.target, "task": args.task, "seed": args.seed})
        # The data this run trained from, as MLflow records a dataset: name, version, digest.
        for name, version in (context().datasets or {"data": ""}).items():
            data = mlflow.data.from_pandas(frame, name=f"{name}:{version}" if version else name)
            mlflow.log_input(data, context="training")
        mlflow.log_metrics({"rows": len(frame), "rows_train": len(train), "rows_test": len(test)})
    print(f"prep: {len(frame)} rows -> train {len(train)}, test {len(test)}")


if __name__ == "__main__":
    main()
