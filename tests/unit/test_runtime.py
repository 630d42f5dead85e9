"""amlops.runtime reads a step's lineage from the variables a job has, on Azure and locally.

The Azure case sets the variables an AML v1 step job has (no AMLOPS_* but the one the v1
compiler puts in the runconfig) over a real MLflow store in which the step's run is a child
of the pipeline's run, as on the workspace's MLflow server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import mlflow
import pytest

from amlops import runtime

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

LINEAGE_VARIABLES = (
    "AMLOPS_RUN_ID", "AMLOPS_PIPELINE", "AMLOPS_STEP_NAME", "AMLOPS_DATASETS",
    "AMLOPS_GIT_COMMIT", "AZUREML_RUN_ID", "AZUREML_ROOT_RUN_ID", "AZUREML_ARM_PROJECT_NAME",
    "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Whatever the test process inherited, each test starts outside any job."""
    for name in LINEAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def azure_job(monkeypatch, tracking_uri):
    """A step job on Azure: its MLflow run is its AML run, a child of the pipeline run."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    # A name of its own per test: the module's tests share one tracking store.
    experiment_id = client.create_experiment(f"train-{uuid.uuid4().hex}")
    pipeline_run = client.create_run(experiment_id, run_name="pipeline")
    step_run = client.create_run(
        experiment_id, tags={"mlflow.parentRunId": pipeline_run.info.run_id}
    )
    step_id = step_run.info.run_id
    for name, value in {
        "AZUREML_RUN_ID": step_id,
        "AZUREML_ARM_PROJECT_NAME": "train",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_RUN_ID": step_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        "AMLOPS_GIT_COMMIT": "0123abc",  # from the compiled step's runconfig
    }.items():
        monkeypatch.setenv(name, value)
    return client, pipeline_run.info.run_id, step_id


def test_on_azure_lineage_comes_from_the_job_and_its_mlflow_parent(azure_job):
    _, pipeline_run_id, step_id = azure_job
    ctx = runtime.context()
    assert ctx.run_id == step_id
    assert ctx.pipeline_run_id == pipeline_run_id
    assert ctx.experiment == "train"
    assert ctx.git_commit == "0123abc"
    assert ctx.local is False
    assert ctx.datasets == {}  # the job is not told a dataset's version (see runtime)


CONTEXT_IN_A_STEP = """\
import json, sys
from dataclasses import asdict
from amlops import runtime
ctx = runtime.context()
print(json.dumps({**asdict(ctx), "local": ctx.local, "asked_mlflow": "mlflow" in sys.modules}))
"""


def context_in_a_step() -> dict:
    """runtime.context() in a process of its own, as a step calls it, with this environment;
    ``asked_mlflow``: whether it had to import mlflow (it asks MLflow only to find a run)."""
    out = subprocess.run(
        [sys.executable, "-c", CONTEXT_IN_A_STEP], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_on_azure_a_root_run_variable_is_taken_without_asking_mlflow(azure_job, monkeypatch):
    monkeypatch.setenv("AZUREML_ROOT_RUN_ID", "root-run")
    ctx = context_in_a_step()
    assert ctx["pipeline_run_id"] == "root-run"
    assert ctx["asked_mlflow"] is False, "MLflow was asked for a run id the job already has"


def test_on_azure_a_step_run_mlflow_does_not_know_leaves_the_pipeline_run_blank(
    azure_job, monkeypatch
):
    monkeypatch.setenv("AZUREML_RUN_ID", "f" * 32)
    assert runtime.context().pipeline_run_id is None


def test_on_azure_mlflow_run_attaches_to_the_aml_run_and_tags_the_commit(azure_job):
    client, _, step_id = azure_job
    with runtime.mlflow_run(tags={"stage": "unit"}) as run:
        assert run.info.run_id == step_id
    tags = client.get_run(step_id).data.tags
    assert tags["mlflow.source.git.commit"] == "0123abc" and tags["stage"] == "unit"


def test_locally_lineage_comes_from_the_runner_without_asking_mlflow(monkeypatch, tracking_uri):
    for name, value in {
        "AZUREML_RUN_ID": "train_20261130_101500_a1b2c3_register",
        "AZUREML_ARM_PROJECT_NAME": "train",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": "train",
        "AMLOPS_RUN_ID": "train_20261130_101500_a1b2c3",
        "AMLOPS_STEP_NAME": "register",
        "AMLOPS_GIT_COMMIT": "0123abc",
        "AMLOPS_DATASETS": '{"diabetes": "3"}',
    }.items():
        monkeypatch.setenv(name, value)

    ctx = context_in_a_step()
    assert ctx["asked_mlflow"] is False, "the local runner passes the pipeline run"
    assert ctx["run_id"] == "train_20261130_101500_a1b2c3_register"
    assert ctx["pipeline_run_id"] == "train_20261130_101500_a1b2c3"
    assert (ctx["experiment"], ctx["step"], ctx["git_commit"]) == ("train", "register", "0123abc")
    assert ctx["datasets"] == {"diabetes": "3"}
    assert ctx["local"] is True


def test_run_by_hand_every_field_is_blank(monkeypatch, tracking_uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # a developer's own MLflow
    ctx = runtime.context()
    assert (ctx.run_id, ctx.pipeline_run_id, ctx.experiment, ctx.git_commit) == (None,) * 4
    assert ctx.local is False


def test_a_model_is_the_train_steps_folder_or_one_file_with_preps_schema(tmp_path):
    """Locally (and from the train step on Azure) a model is a folder; Azure ML v1's AutoML
    writes its best model as one file, whose schema is prep's."""
    folder, prepared = tmp_path / "model", tmp_path / "prepared"
    folder.mkdir()
    prepared.mkdir()
    assert runtime.model_files(folder, None) == (folder / "model.pkl", folder / "schema.json")
    automl = tmp_path / "model_data"
    automl.write_bytes(b"pickle")
    assert runtime.model_files(automl, prepared) == (automl, prepared / "schema.json")
    with pytest.raises(SystemExit, match="is one file: its schema needs --prepared"):
        runtime.model_files(automl, None)
