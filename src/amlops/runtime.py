"""The tiny surface step scripts may use: who am I, and an MLflow run nested under my pipeline.

On the local workspace the runner sets ``AMLOPS_*`` and ``MLFLOW_*`` variables; on Azure ML
neither is set and MLflow goes to the workspace's own tracking server, which nests step runs
under the pipeline run by itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

PIPELINE_RUN_TAG = "amlops.pipeline_run_id"


@dataclass(frozen=True)
class StepContext:
    run_id: str | None
    pipeline: str | None
    step: str | None
    git_commit: str | None
    datasets: dict[str, str]  # registered datasets this step reads: name -> version

    @property
    def local(self) -> bool:
        return self.run_id is not None


def context() -> StepContext:
    """Where this step runs; every field is None when run by hand outside a pipeline."""
    return StepContext(
        run_id=os.environ.get("AMLOPS_RUN_ID") or os.environ.get("AZUREML_RUN_ID"),
        pipeline=os.environ.get("AMLOPS_PIPELINE"),
        step=os.environ.get("AMLOPS_STEP_NAME"),
        git_commit=os.environ.get("AMLOPS_TAG_GIT_COMMIT"),
        datasets=json.loads(os.environ.get("AMLOPS_DATASETS", "{}")),
    )


@contextmanager
def mlflow_run(tags: dict[str, str] | None = None) -> Iterator[Any]:
    """An active MLflow run for this step, nested under its pipeline run's MLflow run."""
    import mlflow

    ctx = context()
    if os.environ.get("MLFLOW_RUN_ID"):
        # A sweep trial: the sweep created this run under its own and reads the metrics the
        # trial logs to it, as Azure hands a trial its run (mlflow resumes MLFLOW_RUN_ID).
        with mlflow.start_run(tags=tags) as run:
            yield run
        return
    if os.environ.get("AMLOPS_RUN_ID") is None:
        with mlflow.start_run(tags=tags) as run:
            yield run
        return
    client = mlflow.MlflowClient()
    experiment_id = _experiment_id(client, ctx.pipeline or "default")
    parent_id = _parent_run_id(client, experiment_id, ctx)
    step_tags = {PIPELINE_RUN_TAG: ctx.run_id or "", "amlops.kind": "step"}
    if ctx.git_commit:
        step_tags["mlflow.source.git.commit"] = ctx.git_commit
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


def _parent_run_id(client: Any, experiment_id: str, ctx: StepContext) -> str:
    found = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{PIPELINE_RUN_TAG}` = '{ctx.run_id}' AND tags.`amlops.kind` = 'pipeline'"
        ),
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {PIPELINE_RUN_TAG: ctx.run_id or "", "amlops.kind": "pipeline"}
    if ctx.git_commit:
        tags["mlflow.source.git.commit"] = ctx.git_commit
    parent = client.create_run(experiment_id, run_name=ctx.run_id, tags=tags)
    # The runner does not load MLflow (start-up cost); the parent is closed as it is opened.
    client.set_terminated(parent.info.run_id, "FINISHED")
    return parent.info.run_id
