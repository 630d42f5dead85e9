"""The tiny surface step scripts may use: who am I, and an MLflow run for this step.

A step reads what an Azure ML v1 step job has; the local runner sets the same variables
with local values (README, "The AML job environment"):

- ``AZUREML_RUN_ID``: this step's run; ``AZUREML_ARM_PROJECT_NAME``: its experiment.
- The pipeline run: Azure ML v1 gives a step no variable for it. There the step's MLflow
  run is its AML run (azureml-mlflow sets ``MLFLOW_RUN_ID`` to the AML run's id,
  ``azureml/mlflow/__init__.py`` ``_setup_remote``, and its store recognises that run by
  ``AZUREML_RUN_ID``, ``_store/tracking/store.py`` ``update_run_info``), and a pipeline's
  step runs are its MLflow children, tagged ``mlflow.parentRunId`` (Azure ML docs, "Query &
  compare experiments and runs with MLflow", Getting child runs). That tag is read, unless
  ``AZUREML_ROOT_RUN_ID`` is set (v2 jobs have it; for v1 it is undocumented).
  Locally the MLflow parent is a run of MLflow's own id, so the runner passes the pipeline
  run id, the one ``amlops runs show`` takes, as ``AMLOPS_RUN_ID``.
- ``AMLOPS_GIT_COMMIT``: the commit deployed. The local runner sets it per run; on Azure
  the v1 compiler puts it in each step's RunConfiguration.environment_variables, so a
  published pipeline carries the commit it was published from.
- ``AMLOPS_DATASETS``: the registered version of each dataset a step reads; local only.
  On Azure a dataset read as "latest" is resolved by the service when the step starts and
  the job is not told the version (it is in the step run's input lineage in the workspace).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PIPELINE_RUN_TAG = "amlops.pipeline_run_id"
MLFLOW_PARENT_TAG = "mlflow.parentRunId"  # mlflow/utils/mlflow_tags.py MLFLOW_PARENT_RUN_ID
# A file of the local workspace: whoever first asks for a pipeline's MLflow run (the runner's
# record or a step) creates it (and MLflow's tables) while holding a lock on this file.
MLFLOW_LOCK_VARIABLE = "AMLOPS_MLFLOW_LOCK"


@dataclass(frozen=True)
class StepContext:
    run_id: str | None  # this step's run (AZUREML_RUN_ID)
    experiment: str | None  # AZUREML_ARM_PROJECT_NAME
    pipeline_run_id: str | None
    step: str | None  # the step's name; the local runner's (Azure has no variable for it)
    git_commit: str | None
    datasets: dict[str, str] = field(default_factory=dict)  # name -> registered version

    @property
    def local(self) -> bool:
        """Run by the local runner (not on Azure, not by hand)."""
        return "AMLOPS_RUN_ID" in os.environ


def context() -> StepContext:
    """Where this step runs; every field is None when run by hand outside a pipeline.

    On Azure, finding the pipeline run asks the workspace's MLflow server (one call); the
    local runner hands it over in a variable.
    """
    env = os.environ
    return StepContext(
        run_id=env.get("AZUREML_RUN_ID"),
        experiment=env.get("AZUREML_ARM_PROJECT_NAME"),
        pipeline_run_id=_pipeline_run_id(env),
        step=env.get("AMLOPS_STEP_NAME"),
        git_commit=env.get("AMLOPS_GIT_COMMIT") or None,
        datasets=json.loads(env.get("AMLOPS_DATASETS", "{}")),
    )


def _pipeline_run_id(env: Any) -> str | None:
    found = env.get("AMLOPS_RUN_ID") or env.get("AZUREML_ROOT_RUN_ID")
    step_run = env.get("AZUREML_RUN_ID")
    if found or not step_run or not env.get("MLFLOW_TRACKING_URI"):
        return found or None
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow.MlflowClient().get_run(step_run)
    except MlflowException:
        return None  # a step run MLflow does not know (e.g. another tracking server)
    return run.data.tags.get(MLFLOW_PARENT_TAG)


@contextmanager
def mlflow_run(tags: dict[str, str] | None = None) -> Iterator[Any]:
    """An active MLflow run for this step, nested under its pipeline run's MLflow run."""
    import mlflow

    ctx = context()
    step_tags = {}
    if ctx.git_commit:
        step_tags["mlflow.source.git.commit"] = ctx.git_commit
    if not ctx.local or os.environ.get("MLFLOW_RUN_ID"):
        # On Azure, start_run attaches to MLFLOW_RUN_ID, the step's AML run, which the
        # service already nests under the pipeline run (mlflow/tracking/fluent.py start_run).
        # A local sweep trial likewise resumes the run its sweep made for it under its own.
        with mlflow.start_run(tags={**step_tags, **(tags or {})}) as run:
            yield run
        return
    _, experiment_id, parent_id = pipeline_mlflow_run(
        ctx.experiment or "default",
        ctx.pipeline_run_id or "",
        git_commit=ctx.git_commit,
        lock=os.environ.get(MLFLOW_LOCK_VARIABLE),
    )
    step_tags.update({PIPELINE_RUN_TAG: ctx.pipeline_run_id or "", "amlops.kind": "step"})
    step_tags.update(tags or {})
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=ctx.step,
        parent_run_id=parent_id,
        tags=step_tags,
    ) as run:
        yield run


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # Artifacts go inside the workspace folder, not ./mlruns of whatever cwd the step has.
    artifacts = os.environ.get("AMLOPS_MLFLOW_ARTIFACTS")
    location = f"{artifacts}/{name}" if artifacts else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # created by a concurrent step in the meantime
        return client.get_experiment_by_name(name).experiment_id


def pipeline_mlflow_run(
    experiment: str,
    pipeline_run_id: str,
    *,
    git_commit: str | None = None,
    start_time_ms: int | None = None,
    lock: str | None = None,
) -> tuple[Any, str, str]:
    """(MlflowClient, experiment id, run id) of a local pipeline run's MLflow run: found by
    its tag, else created, running.

    The local runner's MLflow record (backends/local/mlflow_record.py) owns that run and
    ends it with the pipeline's status; a step's ``mlflow_run()`` may ask for it first,
    since both start at once. ``lock``, the workspace's file all of them are given, lets
    exactly one create it, and one create MLflow's tables in a new workspace (MLflow's
    SQLite store does that on first use and fails when two processes try at once).
    """
    with _locked(lock):
        client = _client()
        experiment_id = _experiment_id(client, experiment)
        found = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`{PIPELINE_RUN_TAG}` = '{pipeline_run_id}' "
                "AND tags.`amlops.kind` = 'pipeline'"
            ),
            max_results=1,
        )
        if found:
            return client, experiment_id, found[0].info.run_id
        tags = {PIPELINE_RUN_TAG: pipeline_run_id, "amlops.kind": "pipeline"}
        if git_commit:
            tags["mlflow.source.git.commit"] = git_commit
        run = client.create_run(
            experiment_id, start_time=start_time_ms, tags=tags, run_name=pipeline_run_id
        )
        return client, experiment_id, run.info.run_id


def mlflow_client(lock: str | Path | None, tracking_uri: str | None = None) -> Any:
    """An MlflowClient made while holding ``lock`` (a local workspace's ``mlflow.lock``):
    the first client of a new workspace creates MLflow's tables, and two processes doing
    that at once fail."""
    with _locked(lock):
        return _client(tracking_uri)


def _client(tracking_uri: str | None = None) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri)  # a new store creates its tables


@contextmanager
def _locked(path: str | Path | None) -> Iterator[None]:
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield


def aliased_version(client, model_name: str, alias: str, *, step: str):
    """The model version behind ``alias``, or None when the registry says there
    is none yet. Any other registry error (no permission, an alias API the registry lacks, a
    network failure) exits the step with one line: promoting a candidate because production
    could not be read would replace a model nobody compared it with."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        INVALID_PARAMETER_VALUE,
        RESOURCE_DOES_NOT_EXIST,
        ErrorCode,
    )

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as e:
        error = e
    if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
        return None  # no registered model of that name
    if error.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE):
        # MLflow's stores report a registered model without that alias as
        # INVALID_PARAMETER_VALUE, the code of a malformed request too: ask the model.
        try:
            aliases = client.get_registered_model(model_name).aliases
        except MlflowException as e:
            error = e
        else:
            if alias not in aliases:
                return None
    message = " ".join(str(error.message).split())  # one line, whatever the server sent
    if not message.startswith(f"{error.error_code}:"):  # REST errors already lead with it
        message = f"{error.error_code}: {message}"
    raise SystemExit(
        f"{step}: cannot read the {alias} model of {model_name!r} from the MLflow "
        f"registry: {message}"
    )


def model_files(model: Path, prepared: Path | None) -> tuple[Path, Path]:
    """(the pickled model, its schema.json) wherever a model step input points: the train
    step's folder (model.pkl and schema.json), or one model file as Azure ML v1's AutoML
    writes its best model (TrainingOutput "Model"), whose schema is prep's."""
    if model.is_dir():
        return model / "model.pkl", model / "schema.json"
    if prepared is None:
        raise SystemExit(f"model {model} is one file: its schema needs --prepared (prep's output)")
    return model, prepared / "schema.json"
