"""register step: add a model version, aliased production, only when evaluate said it is better.

Writes registration.json: the model name, the version (new or current) and whether it is new.
"""

import argparse
import json
import pickle
from pathlib import Path

from amlops.runtime import aliased_version, context, mlflow_run, model_files


def trusted_types(model) -> list[str]:
    """The types skops will not load by default; we trust them: this pipeline trained the model."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


PRODUCTION = "production"


def production_version(client, model_name: str):
    """The version behind the production alias; None when there is none yet; any other
    registry error stops the step with one line (amlops.runtime.aliased_version)."""
    return aliased_version(client, model_name, PRODUCTION, step="register")


def pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "pandas", "skops")]


EXAMPLE_ROWS = 5


def input_example(prepared: Path | None, model: Path):
    """The first held-out rows' features, typed as the model takes them; None without prep's
    output."""
    if prepared is None:
        return None
    import pandas as pd

    schema = json.loads(model_files(model, prepared)[1].read_text())
    columns = schema["numeric"] + schema["categorical"]
    rows = pd.read_csv(prepared / "test.csv", nrows=EXAMPLE_ROWS)
    return rows[columns].astype({c: "object" for c in schema["categorical"]})


def signature(model, example):
    if example is None:
        return None
    from mlflow.models import infer_signature

    return infer_signature(example, model.predict(example))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--evaluation", type=Path, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--dataset", required=True, help="name of the training dataset")
    parser.add_argument(
        "--prepared", type=Path, default=None, help="prep's output: rows for the input example"
    )
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    evaluation = json.loads((args.evaluation / "evaluation.json").read_text())
    result = {"model_name": args.model_name, "version": evaluation["production_version"]}
    result["registered"] = False
    current = None
    if evaluation["register"]:
        import mlflow

        production = production_version(mlflow.MlflowClient(), args.model_name)
        current = production.version if production is not None else None
    if evaluation["register"] and current != evaluation["production_version"]:
        # evaluate compared against a production model that has since been replaced (its
        # result was reused): registering now could demote a better model.
        print(
            f"register: production moved from {evaluation['production_version']} to {current} "
            "since evaluation; not registering (rerun with --regenerate-outputs to re-evaluate)"
        )
        result["version"] = current
    elif evaluation["register"]:
        import mlflow

        with open(model_files(args.model, args.prepared)[0], "rb") as fh:
            model = pickle.load(fh)
        ctx = context()
        tags = {
            "dataset": args.dataset,
            "dataset_version": ctx.datasets.get(args.dataset, ""),
            "pipeline_run_id": ctx.pipeline_run_id or "",
            "git_commit": ctx.git_commit or "",
            **{f"metric.{k}": f"{v:.6g}" for k, v in evaluation["candidate"].items()},
        }
        example = input_example(args.prepared, args.model)
        with mlflow_run():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=args.model_name,
                skops_trusted_types=trusted_types(model),
                # Named, not inferred: inference re-imports the model in a subprocess (slow).
                pip_requirements=pip_requirements(),
                # What a caller must send, and a few real rows showing it.
                signature=signature(model, example),
                input_example=example,
            )
            version = str(info.registered_model_version)
            client = mlflow.MlflowClient()
            for key, value in tags.items():
                client.set_model_version_tag(args.model_name, version, key, value)
            client.set_registered_model_alias(args.model_name, PRODUCTION, version)
        result.update(version=version, registered=True)
        print(f"register: {args.model_name} version {version} is now production")
    else:
        print(f"register: kept {args.model_name} version {result['version']} as production")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "registration.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
