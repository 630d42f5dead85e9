"""The train pipeline: prep -> train -> evaluate -> register, data passed as step outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.config import PipelineConfig
from amlops.errors import ConfigError
from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep

STEPS = Path(__file__).parent / "steps"
TASKS = ("regression", "classification")
DEFAULT_PARAMETERS: dict[str, Any] = {
    "test_size": 0.2,
    "seed": 42,
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 3,
}


@dataclass(frozen=True)
class TrainSettings:
    dataset: str
    target: str
    task: str
    model_name: str
    environment: str

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> TrainSettings:
        allowed = {"dataset", "target", "task", "model_name", "environment", "description"}
        unknown = sorted(set(cfg.settings) - allowed)
        if unknown:
            raise ConfigError(f"{cfg.where}.{unknown[0]}: unknown key")
        values = {}
        for key in ("dataset", "target", "task", "model_name", "environment"):
            value = cfg.settings.get(key)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{cfg.where}.{key}: is required (a non-empty string)")
            values[key] = value
        if values["task"] not in TASKS:
            raise ConfigError(f"{cfg.where}.task: must be one of {', '.join(TASKS)}")
        unknown = sorted(set(cfg.parameters) - set(DEFAULT_PARAMETERS))
        if unknown:
            raise ConfigError(
                f"{cfg.where}.parameters.{unknown[0]}: not a train parameter "
                f"(known: {', '.join(DEFAULT_PARAMETERS)})"
            )
        return cls(**values)


def build(cfg: PipelineConfig, compute: str) -> Pipeline:
    settings = TrainSettings.from_config(cfg)
    p = {
        name: Param(name, _typed(cfg, name, default, cfg.parameters.get(name, default)))
        for name, default in DEFAULT_PARAMETERS.items()
    }
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
        ),  # fmt: skip
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
        description=str(cfg.settings.get("description", "Train, evaluate and register a model")),
    )


def _typed(cfg: PipelineConfig, name: str, default: Any, value: Any) -> Any:
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not type(default):
        raise ConfigError(
            f"{cfg.where}.parameters.{name}: must be {type(default).__name__}, got {value!r}"
        )
    return value
