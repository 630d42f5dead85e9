"""SweepStep and AutoMLStep on v2: a sweep node over a command component and an automl node, as
exported YAML that azure-ai-ml's own loaders read back and its own validation passes; what v2
cannot express is refused with one line. Offline, no fakes (loaders and ``_validate`` are
client-side)."""

from __future__ import annotations

import pytest
from helpers import REPO

from amlops.backends.azureml_v2.export import export_v2
from amlops.config import load_config
from amlops.errors import ConfigError
from amlops.spec import (
    AutoMLStep,
    DatasetInput,
    EarlyTermination,
    Output,
    Param,
    Pipeline,
    ScriptStep,
    SearchParam,
    SweepStep,
)

STEPS = REPO / "pipelines" / "steps"


def sweep_pipeline(**sweep) -> Pipeline:
    prepared, model = Output("prepared"), Output("model")
    settings = {
        "search_space": (
            SearchParam("learning_rate", "loguniform", (-5, -1)),
            SearchParam("n_estimators", "quniform", (50, 250, 50)),
            SearchParam("max_depth", "choice", (2, 3, 4)),
        ),
        "sampling": "random",
        "primary_metric_name": "val_rmse",
        "primary_metric_goal": "minimize",
        "max_total_runs": 12,
        "max_concurrent_runs": 2,
        "max_duration_minutes": 20,
        "early_termination": EarlyTermination("bandit", delay_evaluation=3, slack_factor=0.1),
        **sweep,
    }
    return Pipeline(
        "tune",
        [
            ScriptStep(
                "prep",
                STEPS / "prep",
                arguments=("--data", DatasetInput("diabetes"), "--output", prepared),
            ),
            SweepStep(
                "sweep",
                STEPS / "train",
                arguments=(
                    "--prepared",
                    prepared.as_input(),
                    "--seed",
                    Param("seed", 42),
                    "--output",
                    model,
                ),
                **settings,
            ),
            ScriptStep(
                "evaluate",
                STEPS / "evaluate",
                arguments=("--prepared", prepared.as_input(), "--model", model.as_input()),
            ),
        ],
    )


def automl_pipeline(training_data=None, reader: bool = False, metrics=False) -> Pipeline:
    metrics, model = Output("automl_metrics") if metrics else None, Output("model")
    steps = [
        AutoMLStep(
            "automl",
            training_data=training_data or DatasetInput("diabetes-scoring"),
            metrics_output=metrics,
            model_output=model,
            task="regression",
            label_column_name="target",
            primary_metric="r2_score",
            iterations=30,
            iteration_timeout_minutes=5,
            max_concurrent_iterations=2,
            n_cross_validations=3,
            allowed_models=("RandomForest", "ElasticNet"),
        )
    ]
    if reader:
        steps.append(
            ScriptStep("evaluate", STEPS / "evaluate", arguments=("--model", model.as_input()))
        )
    return Pipeline("automl", steps)


def export(tmp_path, pipeline: Pipeline) -> dict:
    import yaml

    [written_job] = [
        p for p in export_v2(load_config("dev-v2", REPO), [pipeline], tmp_path)
        if p.name == "pipeline.yml"
    ]  # fmt: skip
    return {"file": written_job, "doc": yaml.safe_load(written_job.read_text())}


def test_sweep_is_a_sweep_node_over_a_command_trial(tmp_path):
    from azure.ai.ml import load_job

    out = export(tmp_path, sweep_pipeline())
    node = out["doc"]["jobs"]["sweep"]
    assert node["trial"] == "./components/sweep.yml" and "component" not in node
    assert node["sampling_algorithm"] == "random"
    assert node["search_space"] == {
        "learning_rate": {"type": "loguniform", "min_value": -5, "max_value": -1},
        "n_estimators": {"type": "quniform", "min_value": 50, "max_value": 250, "q": 50},
        "max_depth": {"type": "choice", "values": [2, 3, 4]},
    }
    assert node["objective"] == {"goal": "minimize", "primary_metric": "val_rmse"}
    assert node["limits"] == {"max_total_trials": 12, "max_concurrent_trials": 2, "timeout": 1200}
    assert node["early_termination"] == {
        "type": "bandit", "evaluation_interval": 1, "delay_evaluation": 3, "slack_factor": 0.1,
    }  # fmt: skip
    job = load_job(out["file"])
    result = job._validate()
    assert result.passed, result.error_messages
    sweep = job.jobs["sweep"]
    assert type(sweep).__name__ == "Sweep"
    assert sweep.sampling_algorithm == "random"
    assert sweep.limits.max_total_trials == 12 and sweep.limits.timeout == 1200
    assert type(sweep.early_termination).__name__ == "BanditPolicy"
    assert sweep.early_termination.slack_factor == 0.1
    assert {k: type(v).__name__ for k, v in sweep.search_space.items()} == {
        "learning_rate": "LogUniform", "n_estimators": "QUniform", "max_depth": "Choice",
    }  # fmt: skip
    # The trial's command gets the searched values where HyperDrive appended them on v1.
    command = sweep.trial.command
    assert command.endswith(
        "--learning_rate ${{inputs.learning_rate}} --n_estimators ${{inputs.n_estimators}} "
        "--max_depth ${{inputs.max_depth}}"
    )
    assert {k: v.type for k, v in sweep.trial.inputs.items()} == {
        "prepared": "uri_folder", "seed": "integer",
        "learning_rate": "number", "n_estimators": "number", "max_depth": "integer",
    }  # fmt: skip
    # The best trial's output is the node's: evaluate reads it by the node's name.
    assert out["doc"]["jobs"]["evaluate"]["inputs"]["model"] == (
        "${{parent.jobs.sweep.outputs.model}}"
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (EarlyTermination("median_stopping", evaluation_interval=2), "MedianStoppingPolicy"),
        (
            EarlyTermination("truncation_selection", truncation_percentage=20),
            "TruncationSelectionPolicy",
        ),
    ],
)
def test_grid_sweeps_load_with_each_policy(tmp_path, policy, expected):
    from azure.ai.ml import load_job

    space = (SearchParam("max_depth", "choice", (2, 3)),)
    out = export(tmp_path, sweep_pipeline(sampling="grid", search_space=space,
                                          early_termination=policy))  # fmt: skip
    job = load_job(out["file"])
    assert job._validate().passed
    assert type(job.jobs["sweep"].early_termination).__name__ == expected
    assert job.jobs["sweep"].sampling_algorithm == "grid"


def test_a_sweep_metrics_output_is_refused_on_v2(tmp_path):
    with pytest.raises(ConfigError) as info:
        export(tmp_path, sweep_pipeline(metrics_output=Output("sweep_metrics")))
    assert str(info.value) == (
        "pipeline 'tune': step 'sweep': a v2 sweep node has no metrics_output (the trials' "
        "metrics stay in the workspace's MLflow); drop it"
    )
    assert not tmp_path.joinpath("tune").exists()


def test_automl_is_an_automl_node_on_an_mltable_input(tmp_path):
    from azure.ai.ml import load_job

    out = export(tmp_path, automl_pipeline())
    node = out["doc"]["jobs"]["automl"]
    assert node == {
        "type": "automl",
        "task": "regression",
        "primary_metric": "r2_score",
        "target_column_name": "target",
        "training_data": {"type": "mltable", "path": "azureml:diabetes-scoring@latest"},
        "limits": {
            "timeout_minutes": 15,
            "max_trials": 30,
            "max_concurrent_trials": 2,
            "enable_early_termination": True,
            "trial_timeout_minutes": 5,
        },
        "n_cross_validations": 3,
        "training": {"allowed_training_algorithms": ["RandomForest", "ElasticNet"]},
        "compute": "azureml:cpu-cluster",
    }
    assert not (out["file"].parent / "components").exists()  # no component, no snapshot
    assert not (out["file"].parent / "code").exists()
    job = load_job(out["file"])
    result = job._validate()
    assert result.passed, result.error_messages
    automl = job.jobs["automl"]
    assert type(automl).__name__ == "RegressionJob"
    assert automl.primary_metric == "R2Score"
    assert (automl.limits.max_trials, automl.limits.trial_timeout_minutes) == (30, 5)
    assert automl.n_cross_validations == 3


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (
            lambda: automl_pipeline(DatasetInput("diabetes")),
            "a v2 AutoML node reads an mltable input, and dataset 'diabetes' is a file dataset",
        ),
        (
            lambda: automl_pipeline(reader=True),
            "step 'evaluate' reads 'model', the model_output of AutoMLStep 'automl'; on v2 that "
            "is AutoML's best_model, an MLflow model",
        ),
        (
            lambda: automl_pipeline(metrics=True),
            "step 'automl': a v2 automl node has no metrics_output",
        ),
    ],
)
def test_what_v2_automl_cannot_express_is_refused(tmp_path, pipeline, message):
    with pytest.raises(ConfigError, match=message):
        export(tmp_path, pipeline())


def test_the_shipped_tuning_config_is_refused_on_v2_with_one_line(tmp_path):
    """local-tuning's train reads the sweep's metrics_output, and train_automl trains on prep's
    folder: neither is v2's (README, "Sweeps and AutoML")."""
    config = load_config("local-tuning", REPO)
    from amlops.deploy import build_pipelines

    for pipeline in build_pipelines(config):
        with pytest.raises(ConfigError, match=f"pipeline '{pipeline.name}': step "):
            export_v2(config, [pipeline], tmp_path / pipeline.name)
