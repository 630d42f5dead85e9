"""The train pipeline: prep -> train -> evaluate -> register, data passed as step outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.config import PipelineConfig, SettingsReader
from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep

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
        r.allow({"dataset", "target", "task", "model_name", "environment", "description"})
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
