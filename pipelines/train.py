"""The train pipeline: prep -> train -> evaluate -> register, data passed as step outputs.

With a ``sweep:`` section: prep -> sweep (a HyperDriveStep over the train script) -> train on
the full training data with the best trial's hyperparameters (read from the sweep's
metrics_output) -> evaluate -> register. With ``automl:``: prep -> AutoML -> evaluate -> register.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.config import PipelineConfig, SettingsReader
from amlops.spec import (
    AUTOML_METRICS,
    AutoMLStep,
    DatasetInput,
    EarlyTermination,
    Output,
    Param,
    Pipeline,
    ScriptStep,
    SearchParam,
    SpecError,
    SweepStep,
)

STEPS = Path(__file__).parent / "steps"
TASKS = ("regression", "classification")
DESCRIPTION = "Train, evaluate and register a model"
DEFAULT_PARAMETERS: dict[str, Any] = {
    "test_size": 0.2,
    "seed": 42,
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 3,
}
# What the train script can search over, and the metrics it logs as a trial (train.py in the
# step folder: VALIDATION_METRICS) with the goal each implies.
SEARCHABLE = ("n_estimators", "learning_rate", "max_depth")
SWEEP_METRICS = {
    "regression": {"val_rmse": "minimize", "val_mae": "minimize", "val_r2": "maximize"},
    "classification": {"val_accuracy": "maximize", "val_f1_macro": "maximize"},
}
SWEEP_KEYS = {
    "sampling", "primary_metric", "max_total_runs", "max_concurrent_runs",
    "max_duration_minutes", "validation_fraction", "seed", "search_space", "early_termination",
}  # fmt: skip
POLICY_KEYS = {
    "policy", "evaluation_interval", "delay_evaluation", "slack_factor", "slack_amount",
    "truncation_percentage",
}  # fmt: skip
AUTOML_KEYS = {
    "primary_metric", "experiment_timeout_minutes", "iteration_timeout_minutes", "iterations",
    "max_concurrent_iterations", "n_cross_validations", "validation_size", "allowed_models",
    "blocked_models", "enable_early_stopping", "seed",
}  # fmt: skip


@dataclass(frozen=True)
class TrainSettings:
    dataset: str
    target: str
    task: str
    model_name: str
    environment: str
    description: str

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> TrainSettings:
        r = SettingsReader(cfg)
        r.allow(
            {"dataset", "target", "task", "model_name", "environment", "description"}
            | {"sweep", "automl"}
        )
        if r.has("sweep") and r.has("automl"):
            raise r.fail("automl", "give sweep or automl, not both")
        return cls(
            dataset=r.string("dataset"),
            target=r.string("target"),
            task=r.choice("task", TASKS),
            model_name=r.string("model_name"),
            environment=r.string("environment"),
            description=r.string("description", DESCRIPTION, required=False),
        )


def build(cfg: PipelineConfig, compute: str) -> Pipeline:
    settings = TrainSettings.from_config(cfg)
    values = SettingsReader(cfg).parameters(DEFAULT_PARAMETERS)
    p = {name: Param(name, value) for name, value in values.items()}
    prepared, model, evaluation, registration = (
        Output("prepared"),
        Output("model"),
        Output("evaluation"),
        Output("registration"),
    )
    common = {"compute": compute, "environment": settings.environment}
    data = DatasetInput(settings.dataset)
    steps = [
        ScriptStep(
            name="prep",
            source_dir=STEPS / "prep",
            script="main.py",
            arguments=[
                "--data",
                data,
                "--target",
                settings.target,
                "--task",
                settings.task,
                "--test_size",
                p["test_size"],
                "--seed",
                p["seed"],
                "--output",
                prepared,
            ],
            **common,
        ),  # fmt: skip
    ]
    r = SettingsReader(cfg)
    sweep, automl = r.section("sweep"), r.section("automl")
    if automl is not None:
        steps.append(_automl_step(automl, settings, prepared, model, common))
    elif sweep is not None:
        steps += _sweep_steps(sweep, settings, prepared, model, p, common)
    else:
        steps.append(
            ScriptStep(
                name="train",
                source_dir=STEPS / "train",
                script="main.py",
                arguments=[
                    "--prepared",
                    prepared.as_input(),
                    "--n_estimators",
                    p["n_estimators"],
                    "--learning_rate",
                    p["learning_rate"],
                    "--max_depth",
                    p["max_depth"],
                    "--seed",
                    p["seed"],
                    "--output",
                    model,
                ],
                **common,
            )  # fmt: skip
        )
    steps += [
        ScriptStep(
            name="evaluate",
            source_dir=STEPS / "evaluate",
            script="main.py",
            arguments=[
                "--prepared",
                prepared.as_input(),
                "--model",
                model.as_input(),
                "--model_name",
                settings.model_name,
                "--output",
                evaluation,
            ],
            **common,
        ),  # fmt: skip
        ScriptStep(
            name="register",
            source_dir=STEPS / "register",
            script="main.py",
            arguments=[
                "--model",
                model.as_input(),
                "--evaluation",
                evaluation.as_input(),
                "--model_name",
                settings.model_name,
                "--dataset",
                settings.dataset,
                "--prepared",
                prepared.as_input(),
                "--output",
                registration,
            ],
            inputs=[data],
            # Reuse is safe: a reused register step means nothing upstream changed.
            **common,
        ),  # fmt: skip
    ]
    return Pipeline(
        name=cfg.name,
        steps=steps,
        description=settings.description,
    )


def _search_space(r: SettingsReader) -> list[SearchParam]:
    space = r.get("search_space")
    if not isinstance(space, dict) or not space:
        raise r.fail("search_space", "must map hyperparameters to expressions, e.g. "
                     "learning_rate: {uniform: [0.01, 0.3]}")  # fmt: skip
    found = []
    for name, body in space.items():
        key = f"search_space.{name}"
        if name not in SEARCHABLE:
            raise r.fail(key, f"not a hyperparameter of the train script ({', '.join(SEARCHABLE)})")
        if not isinstance(body, dict) or len(body) != 1:
            raise r.fail(key, "must be one expression, e.g. {choice: [50, 100]}")
        ((expression, values),) = body.items()
        values = values if isinstance(values, list) else [values]
        try:
            found.append(SearchParam(name, expression, tuple(values)))
        except SpecError as exc:
            raise r.fail(key, str(exc).split(": ", 1)[-1]) from None
    return found


def _early_termination(r: SettingsReader) -> EarlyTermination | None:
    policy = r.section("early_termination")
    if policy is None:
        return None
    policy.allow(POLICY_KEYS)
    try:
        return EarlyTermination(**{k: policy.get(k) for k in policy.keys()})
    except (SpecError, TypeError) as exc:
        raise r.fail("early_termination", str(exc)) from None


def _sweep_steps(r, settings, prepared, model, p, common) -> list:
    """The sweep over the train script, then train on all training rows with the best trial's
    hyperparameters, which it reads from the sweep's metrics_output (as on Azure)."""
    r.allow(SWEEP_KEYS)
    metrics = SWEEP_METRICS[settings.task]
    metric = r.choice("primary_metric", tuple(metrics))
    space = _search_space(r)
    searched = {s.name for s in space}
    swept, best_model, sweep_metrics = Output("sweep_model"), model, Output("sweep_metrics")
    fixed = [a for name in SEARCHABLE if name not in searched for a in (f"--{name}", p[name])]
    try:
        sweep = SweepStep(
            name="sweep",
            source_dir=STEPS / "train",
            script="main.py",
            arguments=[
                "--prepared", prepared.as_input(), *fixed, "--seed", p["seed"],
                "--validation_fraction", r.number("validation_fraction", 0.25),
                "--output", swept,
            ],
            search_space=space,
            sampling=r.choice("sampling", ("random", "grid", "bayesian"), default="random"),
            primary_metric_name=metric,
            primary_metric_goal=metrics[metric],
            max_total_runs=r.integer("max_total_runs", 20, low=1),
            max_concurrent_runs=r.integer("max_concurrent_runs", None, low=1),
            max_duration_minutes=r.integer("max_duration_minutes", 10080, low=1),
            seed=r.integer("seed", 0),
            early_termination=_early_termination(r),
            metrics_output=sweep_metrics,
            **common,
        )  # fmt: skip
    except SpecError as exc:
        raise _located(r, exc, SWEEP_KEYS | {"early termination"}) from None
    train = ScriptStep(
        name="train",
        source_dir=STEPS / "train",
        script="main.py",
        arguments=[
            "--prepared", prepared.as_input(), *fixed, "--seed", p["seed"],
            "--best_of", sweep_metrics.as_input(), "--primary_metric", metric,
            "--goal", metrics[metric], "--output", best_model,
        ],
        **common,
    )  # fmt: skip
    return [sweep, train]


def _automl_step(r, settings, prepared, model, common) -> AutoMLStep:
    r.allow(AUTOML_KEYS)
    metrics = AUTOML_METRICS[settings.task]
    try:
        return AutoMLStep(
            name="automl",
            training_data=prepared.as_input("training_data"),
            training_file="train.csv",
            metrics_output=Output("automl_metrics"),
            model_output=model,
            task=settings.task,
            label_column_name=settings.target,
            primary_metric=r.choice("primary_metric", metrics, default=metrics[0]),
            experiment_timeout_minutes=r.integer("experiment_timeout_minutes", 15),
            iteration_timeout_minutes=r.integer("iteration_timeout_minutes", None),
            iterations=r.integer("iterations", 100),
            max_concurrent_iterations=r.integer("max_concurrent_iterations", 1),
            n_cross_validations=r.integer("n_cross_validations", None),
            validation_size=r.number("validation_size", None),
            allowed_models=r.strings("allowed_models"),
            blocked_models=r.strings("blocked_models"),
            enable_early_stopping=r.boolean("enable_early_stopping", True),
            seed=r.integer("seed", 0),
            **common,
        )
    except SpecError as exc:
        raise _located(r, exc, AUTOML_KEYS) from None


def _located(r: SettingsReader, exc: SpecError, keys: set[str]) -> Exception:
    """The spec's refusal as a config error at the key it is about (the first key it names)."""
    message = str(exc).split(": ", 1)[-1]  # without the "SweepStep 'sweep'" prefix
    named = sorted((message.find(k), k) for k in keys if k in message)
    key = named[0][1].replace(" ", "_") if named else "sampling"
    return r.fail(key, message)
