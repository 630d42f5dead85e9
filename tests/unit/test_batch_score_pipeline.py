"""pipelines/batch_score.py: the spec it builds from config, and the errors it gives."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from amlops.config import PipelineConfig
from amlops.errors import ConfigError
from amlops.spec import DataPathParam, Output, ParallelStep, Param

ROOT = Path(__file__).resolve().parents[2]
WHERE = "config/local.yml: pipelines.batch_score"
SETTINGS = {
    "environment": "amlops-train",
    "model_name": "diabetes-model",
    "key_column": "row_id",
    "input_datastore": "workspaceblobstore",
    "input_path": "scoring/diabetes",
}


def _module():
    # pipelines/ is a package at the repo root, as the deploy stages import it.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("pipelines.batch_score")


def _build(settings=None, parameters=None):
    cfg = PipelineConfig(
        name="batch_score",
        settings=SETTINGS if settings is None else settings,
        parameters=parameters or {},
        where=WHERE,
    )
    return _module().build(cfg, "cpu-cluster")


def test_one_parallel_step_scoring_a_data_path_parameter_with_the_production_model():
    pipeline = _build(parameters={"mini_batch_size": "2KB", "error_threshold": 4})
    [step] = pipeline.steps
    assert isinstance(step, ParallelStep)
    assert step.entry_script == "score.py" and (step.source_dir / "score.py").is_file()
    assert step.inputs == (
        DataPathParam("scoring_data", "workspaceblobstore", "scoring/diabetes", kind="tabular"),
    )
    assert step.output == Output("predictions")
    assert step.output_action == "append_row"
    assert (step.compute, step.environment, step.allow_reuse) == (
        "cpu-cluster",
        "amlops-train",
        False,
    )
    params = {p.name: p.default for p in pipeline.parameters if isinstance(p, Param)}
    assert params == {
        "model_name": "diabetes-model",
        "model_version": "production",
        "mini_batch_size": "2KB",
        "error_threshold": 4,
        "process_count_per_node": 2,
    }
    assert step.arguments == (
        "--model_name",
        Param("model_name", "diabetes-model"),
        "--model_version",
        Param("model_version", "production"),
        "--key_column",
        "row_id",
    )


def test_a_numeric_model_version_from_yaml_becomes_a_string_parameter():
    pipeline = _build(parameters={"model_version": 3})
    assert pipeline.resolve_parameters(None)["model_version"] == "3"


@pytest.mark.parametrize(
    "settings, parameters, message",
    [
        ({k: v for k, v in SETTINGS.items() if k != "model_name"}, {}, f"{WHERE}.model_name: is "),
        ({**SETTINGS, "modle_name": "x"}, {}, f"{WHERE}.modle_name: unknown key"),
        (SETTINGS, {"mini_batch_size": "1.5MB"}, f"{WHERE}.parameters.mini_batch_size"),
        (SETTINGS, {"error_threshold": -2}, f"{WHERE}.parameters.error_threshold"),
        (SETTINGS, {"process_count_per_node": 0}, f"{WHERE}.parameters.process_count_per_node"),
        (SETTINGS, {"seed": 1}, f"{WHERE}.parameters.seed: not a batch_score parameter"),
    ],
)
def test_config_errors_name_the_key(settings, parameters, message):
    with pytest.raises(ConfigError) as info:
        _build(settings, parameters)
    assert str(info.value).startswith(message)
