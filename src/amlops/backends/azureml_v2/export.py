"""``amlops export --backend azureml_v2``: what a deploy would create, as YAML ``az ml`` reads.

Per pipeline, under ``DIR/<pipeline>/``: ``pipeline.yml`` (a pipeline job),
``components/<step>.yml`` (command and parallel components), ``code/<step>/`` (each step's
snapshot: exactly the files azureml-core's walk uploads, so the export runs anywhere and a code
change shows in the diff),
``pipeline-component.yml`` (the graph a batch deployment runs), ``batch-endpoint.yml`` and
``deployment.yml``; ``DIR/environments/<name>/environment.yml`` with its conda file, or, for
an environment a step importing ``amlops`` uses, its build context (``context/``: Dockerfile,
conda file and this project's runtime wheel); and ``DIR/schedules/<name>.yml``. Every path
inside is relative, and every file loads back with azure-ai-ml's loaders. Workspace versions
are the workspace's to give, so environments and datasets are named ``@latest``: the same
pipelines give the same bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from amlops.backends.azureml_v2.compile import SCHEMA, Refs, compile_pipeline
from amlops.backends.azureml_v2.environments import (
    CONDA_FILE,
    definition,
    environment_document,
    write_build_context,
)
from amlops.backends.azureml_v2.naming import deployment_name, endpoint_name
from amlops.backends.azureml_v2.schedules import check_schedules, schedule_document
from amlops.backends.runtime_wheel import steps_needing_runtime
from amlops.config import Config
from amlops.content import walk_files
from amlops.errors import ConfigError
from amlops.spec import Pipeline

DEFAULT_DATASTORE = "workspaceblobstore"


def refs_for_export(config: Config, pipeline_dir: Path) -> Refs:
    kinds = {ds.name: ds.kind for ds in config.datasets}

    def dataset(item: Any) -> tuple[str, str]:
        if item.dataset not in kinds:
            raise ConfigError(f"{config.file}: dataset {item.dataset!r} is not under datasets:")
        version = "@latest" if item.version == "latest" else f":{item.version}"
        return f"azureml:{item.dataset}{version}", kinds[item.dataset]

    return Refs(
        environment=lambda name: f"azureml:{name}@latest",
        dataset=dataset,
        datastore=lambda name: name,
        code=lambda step: f"../code/{step.name}",
    )


def export_v2(config: Config, pipelines: Sequence[Pipeline], out_dir: Path) -> list[Path]:
    """Write the YAML files for every pipeline and schedule; return them in a stable order."""
    check_schedules(config.schedules, str(config.file))  # before anything is written
    envs = config.environments
    default_env = envs[0].name if envs else None
    documents: list[tuple[Path, dict[str, Any]]] = []
    for pipeline in pipelines:
        base = Path(pipeline.name)
        compiled = compile_pipeline(
            pipeline,
            compute=config.compute,
            default_environment=default_env,
            refs=refs_for_export(config, base),
        )
        documents.append((base / "pipeline.yml", compiled.job))
        for step, doc in compiled.components.items():
            documents.append((base / "components" / f"{step}.yml", doc))
        documents.append((base / "pipeline-component.yml", compiled.pipeline_component))
        documents.append((base / "batch-endpoint.yml", endpoint_document(pipeline)))
        documents.append(
            (base / "deployment.yml", deployment_document(pipeline, "0", config.compute))
        )
    runtime = steps_needing_runtime(pipelines, default_env)
    definitions = {
        e.name: definition(e, config.root, needs_runtime=e.name in runtime) for e in envs
    }
    for env in envs:
        defn = definitions[env.name]
        context = "./context" if defn.runtime else f"./{CONDA_FILE}"
        doc = environment_document(defn, context, {"amlops_fingerprint": defn.fingerprint})
        documents.append((Path("environments") / env.name / "environment.yml", doc))
    for sc in config.schedules:
        job = f"../{sc.pipeline}/pipeline.yml"
        documents.append((Path("schedules") / f"{sc.name}.yml", schedule_document(sc, job)))
    out_dir.mkdir(parents=True, exist_ok=True)
    component_files = {rel for rel, _ in documents}
    for pipeline in pipelines:
        code = out_dir / pipeline.name / "code"
        if code.exists():
            shutil.rmtree(code)  # a step removed from the pipeline leaves no stale snapshot
        for step in pipeline.steps:
            if Path(pipeline.name) / "components" / f"{step.name}.yml" not in component_files:
                continue  # an AutoML node runs the service's code, not a snapshot
            for rel, path in walk_files(step.source_dir):
                target = code / step.name / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    for env in envs:
        folder = out_dir / "environments" / env.name
        if folder.exists():
            shutil.rmtree(folder)  # a context from before must not keep an old wheel
        if definitions[env.name].runtime:
            write_build_context(env, config.root, folder / "context")
        else:
            folder.mkdir(parents=True)
            shutil.copyfile(env.conda_file, folder / CONDA_FILE)
    written = []
    for rel, doc in documents:
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
        written.append(path)
    return written


def endpoint_document(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "$schema": f"{SCHEMA}/batchEndpoint.schema.json",
        "name": endpoint_name(pipeline.name),
        "description": pipeline.description or pipeline.name,
        "auth_mode": "aad_token",
    }


def deployment_document(pipeline: Pipeline, version: str, compute: str) -> dict[str, Any]:
    return {
        "$schema": f"{SCHEMA}/pipelineComponentBatchDeployment.schema.json",
        "name": deployment_name(version),
        "endpoint_name": endpoint_name(pipeline.name),
        "type": "pipeline",
        "component": "./pipeline-component.yml",
        "settings": {"default_compute": compute, "continue_on_step_failure": "false"},
        "description": pipeline.description or pipeline.name,
    }
