"""SweepStep and AutoMLStep on Azure ML v1: built by the SDK's own HyperDriveStep and AutoMLStep
and published through its in-memory DryRunServiceCaller, then read back from the graph.

Faked edges (amlops.backends.azureml_v1.offline): auth, service discovery, snapshot uploads
(the pipeline's and the one HyperDriveStep makes itself), the asset services, and the two
workspace reads AutoMLStep makes (location, compute list).
"""

from __future__ import annotations

import pytest
from aml_offline import CONFIG, make_backend, write_config, write_step

from amlops.backends.azureml_v1.export import graph_document
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

SPACE = (
    SearchParam("learning_rate", "uniform", (0.02, 0.3)),
    SearchParam("n_estimators", "quniform", (50, 250, 50)),
    SearchParam("max_depth", "choice", (2, 3, 4)),
)


@pytest.fixture
def deployed(workspace, dry_run, assets, project):
    config = write_config(project)
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    return backend


def sweep_pipeline(project, **sweep) -> Pipeline:
    """prep -> sweep over train -> a step reading the sweep's metrics_output, as train.py builds."""
    prepared, swept, metrics, model = (
        Output("prepared"), Output("sweep_model"), Output("sweep_metrics"), Output("model"),
    )  # fmt: skip
    settings = {
        "search_space": SPACE,
        "sampling": "bayesian",
        "primary_metric_name": "val_rmse",
        "primary_metric_goal": "minimize",
        "max_total_runs": 12,
        "max_concurrent_runs": 2,
        "max_duration_minutes": 20,
        **sweep,
    }
    return Pipeline(
        "tune",
        [
            ScriptStep(
                "prep",
                project / "steps" / "prep",
                arguments=("--out", prepared),
                environment="test-env",
            ),
            SweepStep(
                "sweep",
                project / "steps" / "train",
                script="main.py",
                arguments=(
                    "--prepared",
                    prepared.as_input(),
                    "--seed",
                    Param("seed", 42),
                    "--output",
                    swept,
                ),
                metrics_output=metrics,
                environment="test-env",
                **settings,
            ),
            ScriptStep(
                "train",
                project / "steps" / "train",
                arguments=("--best_of", metrics.as_input(), "--output", model),
                environment="test-env",
            ),
        ],
    )


def published(backend, dry_run, assets, pipeline) -> tuple[str, dict]:
    [change] = backend.publish([pipeline], plan=False)
    pid = change.detail["published_pipeline_id"]
    return pid, graph_document(dry_run, assets, pid, pipeline)


def step_doc(doc: dict, name: str) -> dict:
    return next(s for s in doc["steps"] if s["name"] == name)


def test_sweep_is_a_hyperdrive_step_with_its_space_metric_and_limits(
    deployed, dry_run, assets, project
):
    pid, doc = published(deployed, dry_run, assets, sweep_pipeline(project))
    sweep = step_doc(doc, "sweep")
    assert sweep["kind"] == "HyperDriveStep"
    assert (sweep["script"], sweep["compute"], sweep["environment"]) == (
        "main.py", "cpu-cluster", "test-env",
    )  # fmt: skip
    # HyperDrive appends "--<key> <value>" to these, as the local runner does.
    assert sweep["arguments"] == [
        "--prepared", {"type": "input", "name": "prepared", "mode": "mount"},
        "--seed", {"type": "parameter", "name": "seed"},
        "--output", {"type": "output", "name": "sweep_model", "mode": "mount"},
    ]  # fmt: skip
    assert sweep["sweep"] == {
        "sampling": {
            "name": "BayesianOptimization",
            "parameter_space": {
                "--learning_rate": ["uniform", [0.02, 0.3]],
                "--n_estimators": ["quniform", [50, 250, 50]],
                "--max_depth": ["choice", [[2, 3, 4]]],
            },
        },
        "policy": {"name": "Default"},  # v1's NoTerminationPolicy
        "primary_metric": {"name": "val_rmse", "goal": "minimize"},
        "max_total_runs": 12,
        "max_concurrent_runs": 2,
        "max_duration_minutes": 20,
        "metrics_output": ["sweep_metrics"],
    }
    node = dry_run.node_params(pid, "sweep")
    assert (node["PrimaryMetricName"], node["PrimaryMetricGoal"]) == ("val_rmse", "minimize")
    # The trial outputs are the step's; metrics_output is filled by the service.
    assert sweep["outputs"] == ["sweep_metrics", "sweep_model"]
    # The step after the sweep mounts the metrics JSON HyperDrive writes.
    train = step_doc(doc, "train")
    assert train["arguments"][:2] == [
        "--best_of", {"type": "input", "name": "sweep_metrics", "mode": "mount"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            EarlyTermination("bandit", evaluation_interval=2, delay_evaluation=3, slack_factor=0.1),
            {"name": "Bandit", "properties": {"evaluation_interval": 2, "delay_evaluation": 3,
                                              "slack_factor": 0.1}},
        ),
        (
            EarlyTermination("median_stopping", delay_evaluation=5),
            {"name": "MedianStopping", "properties": {"evaluation_interval": 1,
                                                      "delay_evaluation": 5}},
        ),
        (
            EarlyTermination("truncation_selection", truncation_percentage=20),
            {"name": "TruncationSelection", "properties": {"evaluation_interval": 1,
                                                           "delay_evaluation": 0,
                                                           "truncation_percentage": 20,
                                                           "exclude_finished_jobs": False}},
        ),
    ],
)  # fmt: skip
def test_random_and_grid_sweeps_carry_their_early_termination_policy(
    deployed, dry_run, assets, project, policy, expected
):
    space = (SearchParam("max_depth", "choice", (2, 3)), SearchParam("lr", "loguniform", (-5, -1)))
    pipeline = sweep_pipeline(project, sampling="random", search_space=space,
                              early_termination=policy)  # fmt: skip
    _, doc = published(deployed, dry_run, assets, pipeline)
    sweep = step_doc(doc, "sweep")["sweep"]
    assert sweep["policy"] == expected
    assert sweep["sampling"] == {
        "name": "RANDOM",
        "parameter_space": {"--max_depth": ["choice", [[2, 3]]], "--lr": ["loguniform", [-5, -1]]},
    }
    grid = sweep_pipeline(project, sampling="grid", search_space=space[:1],
                          early_termination=policy)  # fmt: skip
    _, doc = published(deployed, dry_run, assets, grid)
    assert step_doc(doc, "sweep")["sweep"]["sampling"]["name"] == "GRID"


def automl_pipeline(project, reader_env: str = "test-env", **automl) -> Pipeline:
    prepared, metrics, model = Output("prepared"), Output("automl_metrics"), Output("model")
    settings = {
        "task": "regression",
        "label_column_name": "target",
        "primary_metric": "r2_score",
        "iterations": 30,
        "max_concurrent_iterations": 2,
        "n_cross_validations": 3,
        "allowed_models": ("RandomForest", "ElasticNet"),
        **automl,
    }
    steps = [
        ScriptStep(
            "prep",
            project / "steps" / "prep",
            arguments=("--out", prepared),
            environment="test-env",
        ),
        AutoMLStep(
            "automl",
            training_data=settings.pop("training_data", prepared.as_input("training_data")),
            metrics_output=metrics,
            model_output=model,
            environment="test-env",
            **settings,
        ),
        ScriptStep(
            "report",
            project / "steps" / "train",
            arguments=("--metrics", metrics.as_input(), "--out", Output("report")),
            environment="test-env",
        ),
    ]
    if reader_env:
        steps.append(
            ScriptStep(
                "evaluate",
                project / "steps" / "train",
                arguments=("--model", model.as_input(), "--out", Output("evaluation")),
                environment=reader_env,
            )
        )
    return Pipeline("automl", steps)


def test_automl_is_an_automl_step_with_metrics_and_model_training_outputs(
    deployed, dry_run, assets, project
):
    pid, doc = published(deployed, dry_run, assets, automl_pipeline(project, reader_env=""))
    automl = step_doc(doc, "automl")
    assert automl["kind"] == "AutoMLStep"
    assert automl["compute"] == "cpu-cluster"
    assert automl["automl"] == {
        "task_type": "regression",
        "primary_metric": "r2_score",
        "label_column_name": "target",
        "experiment_timeout_minutes": 15,
        "iteration_timeout_minutes": None,
        "iterations": 30,
        "max_concurrent_iterations": 2,
        "n_cross_validations": 3,
        "validation_size": 0.0,
        "whitelist_models": "ElasticNet,RandomForest",
        "blacklist_algos": None,
        "enable_early_stopping": True,
        # prep's output, read as delimited files at run time (OutputTabularDatasetConfig)
        "intermediate_datasets": "training_data",
        "scenario": "AutoML",  # AutoML's curated environment
        "metrics_output": ["automl_metrics"],
        "model_output": ["model"],
    }
    assert automl["inputs"] == [{"type": "input", "name": "training_data", "mode": "direct"}]
    assert automl["outputs"] == ["automl_metrics", "model"]  # no default pair besides
    report = step_doc(doc, "report")
    assert report["arguments"][:2] == [
        "--metrics", {"type": "input", "name": "automl_metrics", "mode": "mount"},
    ]  # fmt: skip
    node = dry_run.node_params(pid, "automl")
    assert (node["primary_metric"], node["task_type"]) == ("r2_score", "regression")


def test_a_step_reading_automls_model_needs_automls_runtime(deployed, project):
    with pytest.raises(ConfigError) as info:
        deployed.build([automl_pipeline(project)], plan=False)
    assert str(info.value) == (
        "pipeline 'automl': step 'evaluate' reads 'model', an AutoMLStep's model_output, which "
        "on Azure ML v1 is AutoML's pickled model file and loads only with "
        "azureml-automl-runtime, not in environment 'test-env'; run this pipeline locally, or "
        "give that step an environment with AutoML's runtime"
    )


def test_automl_model_reader_builds_in_an_environment_with_automls_runtime(
    workspace, dry_run, assets, project
):
    conda = (project / "envs" / "test.yml").read_text()
    runtime = "      - pandas\n      - azureml-automl-runtime~=1.62.0\n"
    conda = conda.replace("name: test-env", "name: automl-env").replace("      - pandas\n", runtime)
    write_step(project / "envs", {"automl.yml": conda})
    env = "environments:\n  automl-env:\n    conda_file: envs/automl.yml\n"
    config = write_config(project, CONFIG.replace("environments:\n", env))
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    [change] = backend.build([automl_pipeline(project, reader_env="automl-env")], plan=False)
    assert change.name == "automl"


def test_automl_trains_on_a_tabular_dataset_not_a_file_dataset(workspace, dry_run, assets, project):
    text = CONFIG.replace(
        "  lookup:\n", "  rows:\n    kind: tabular\n    datastore: training\n"
        "    datastore_path: rows\n  lookup:\n")  # fmt: skip
    config = write_config(project, text)
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    tabular = automl_pipeline(project, reader_env="", training_data=DatasetInput("rows"))
    _, doc = published(backend, dry_run, assets, tabular)
    [data] = step_doc(doc, "automl")["inputs"]
    assert (data["type"], data["dataset"], data["dataset_type"]) == ("dataset", "rows", "tabular")
    assert (data["mode"], data["version"]) == ("direct", "latest")  # read as latest at run time
    with pytest.raises(ConfigError, match="trains on dataset 'diabetes', a file dataset"):
        backend.build(
            [automl_pipeline(project, reader_env="", training_data=DatasetInput("diabetes"))],
            plan=False,
        )
