"""amlops export --backend azureml_v2: YAML that azure-ai-ml's own loaders read back and its own
validation passes, matching the spec argument by argument. Offline: no fakes at all, nothing here
talks to a service (the loaders and ``_validate`` are client-side)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO

from amlops.backends.azureml_v2.compile import Refs, compile_pipeline
from amlops.backends.azureml_v2.export import export_v2
from amlops.config import load_config
from amlops.deploy import build_pipelines
from amlops.errors import ConfigError
from amlops.spec import DatasetInput, InputRef, Output, ParallelStep, Param

BINDING = re.compile(r"^\$\{\{(inputs|outputs)\.(\w+)\}\}$")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    config = load_config("dev-v2", REPO)
    pipelines = build_pipelines(config)
    out = tmp_path_factory.mktemp("export-v2")
    return config, pipelines, out, export_v2(config, pipelines, out)


def test_every_file_loads_back_and_validates_with_azure_ai_ml(exported):
    from azure.ai.ml import (
        load_batch_endpoint,
        load_component,
        load_environment,
        load_job,
    )

    # Not re-exported by azure.ai.ml 1.35.2 (load_batch_deployment reads model deployments).
    from azure.ai.ml.entities._load_functions import (
        load_pipeline_component_batch_deployment,
        load_schedule,
    )

    _, pipelines, out, written = exported
    loaders = {
        "pipeline.yml": load_job,
        "pipeline-component.yml": load_component,
        "batch-endpoint.yml": load_batch_endpoint,
        "deployment.yml": load_pipeline_component_batch_deployment,
        "environment.yml": load_environment,
    }
    kinds, validated = set(), set()
    for path in written:
        loader = load_component if path.parent.name == "components" else loaders.get(path.name)
        if path.parent.name == "schedules":
            loader = load_schedule
        entity = loader(path)
        kinds.add(type(entity).__name__)
        validate = getattr(entity, "_validate", None)
        result = validate() if validate is not None else None
        if result is not None:  # endpoints and deployments validate only against the service
            assert result.passed, (path, result.error_messages)
            validated.add(type(entity).__name__)
    assert kinds == {
        "PipelineJob", "CommandComponent", "ParallelComponent", "PipelineComponent",
        "BatchEndpoint", "PipelineComponentBatchDeployment", "JobSchedule", "Environment",
    }  # fmt: skip
    assert sorted(
        p.relative_to(out).as_posix() for p in written if p.parent.name == "schedules"
    ) == [
        "schedules/score-weekdays.yml",
        "schedules/train-nightly.yml",
    ]


def test_paths_are_relative_and_the_bytes_are_stable(exported, tmp_path):
    config, pipelines, out, written = exported
    again = export_v2(config, pipelines, tmp_path)
    for first, second in zip(written, again, strict=True):
        text = first.read_text()
        assert text == second.read_text(), first
        assert str(REPO) not in text and str(out) not in text and "/tmp" not in text
    prep = yaml.safe_load((out / "train" / "components" / "prep.yml").read_text())
    assert prep["code"] == "../code/prep"
    # The snapshot is the files azureml-core's walk keeps: .amlignore drops Python's caches.
    shipped = sorted(p.name for p in (out / "train" / "code" / "prep").rglob("*") if p.is_file())
    assert shipped == [".amlignore", "main.py", "prep.py"]


def components_for(env: str):
    config = load_config(env, REPO)
    refs = Refs(
        environment=lambda n: f"azureml:{n}:3",
        dataset=lambda i: (f"azureml:{i.dataset}:7", "file"),
        datastore=lambda n: n,
        code=lambda s: f"../code/{s.name}",
    )
    for pipeline in build_pipelines(config):
        yield (
            pipeline,
            compile_pipeline(pipeline, compute=config.compute, default_environment=None, refs=refs),
        )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_script_steps_match_the_spec_argument_by_argument(env):
    seen = 0
    for pipeline, compiled in components_for(env):
        for step in pipeline.steps:
            doc = compiled.components[step.name]
            node = compiled.job["jobs"][step.name]
            assert doc["is_deterministic"] is step.allow_reuse
            if isinstance(step, ParallelStep):
                continue
            tokens = doc["command"].split()
            assert tokens[:2] == ["python", step.script]
            for arg, token in zip(step.arguments, tokens[2:], strict=True):
                seen += 1
                if isinstance(arg, str | int | float):
                    assert token == str(arg)
                    continue
                kind, name = BINDING.match(token).groups()
                if isinstance(arg, Output):
                    assert (kind, name) == ("outputs", arg.name)
                    assert doc["outputs"][name]["type"] == "uri_folder"
                elif isinstance(arg, Param):
                    assert node["inputs"][name] == f"${{{{parent.inputs.{arg.name}}}}}"
                    assert compiled.job["inputs"][arg.name] == arg.default
                elif isinstance(arg, InputRef):
                    producer = pipeline.producer_of(arg.output).name
                    assert node["inputs"][name] == (
                        f"${{{{parent.jobs.{producer}.outputs.{arg.output.name}}}}}"
                    )
                elif isinstance(arg, DatasetInput):
                    assert node["inputs"][name] == {
                        "type": "uri_folder", "path": f"azureml:{arg.dataset}:7", "mode": "ro_mount"
                    }  # fmt: skip
            assert node["compute"] == f"azureml:{step.compute}"
    assert seen > 20


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_parallel_step_keeps_its_settings(env):
    [(pipeline, compiled)] = [(p, c) for p, c in components_for(env) if p.name == "batch_score"]
    [step] = pipeline.steps
    doc, node = compiled.components["score"], compiled.job["jobs"]["score"]
    # append_row_to on the task: given to parallel_run_function it would be dropped.
    assert doc["task"]["append_row_to"] == "${{outputs.predictions}}"
    assert doc["task"]["entry_script"] == step.entry_script
    assert doc["input_data"] == "${{inputs.scoring_data}}"
    assert doc["inputs"]["scoring_data"] == {"type": "mltable", "mode": "eval_mount"}
    assert compiled.job["inputs"]["scoring_data"]["path"] == (
        f"azureml://datastores/{step.inputs[0].datastore}/paths/{step.inputs[0].path}"
    )
    assert node["mini_batch_size"] == "${{parent.inputs.mini_batch_size}}"
    assert doc["error_threshold"] == step.error_threshold.default
    assert doc["max_concurrency_per_instance"] == step.process_count_per_node.default
    assert doc["retry_settings"] == {
        "timeout": step.run_invocation_timeout, "max_retries": step.run_max_try
    }  # fmt: skip
    assert node["resources"] == {"instance_count": step.node_count}
    assert "--append_row_file_name predictions.txt" in doc["task"]["program_arguments"]
    # v2 cannot bind these per run: fixed at publish, said in the build summary, and not
    # offered as pipeline inputs (a run that sets one is refused, not silently ignored).
    assert compiled.fixed == {
        "score.error_threshold": step.error_threshold.default,
        "score.process_count_per_node": step.process_count_per_node.default,
    }
    assert "error_threshold" not in compiled.job["inputs"]
    assert "mini_batch_size" in compiled.job["inputs"]


def test_loaded_parallel_component_keeps_append_row_to(exported):
    from azure.ai.ml import load_component

    _, _, out, _ = exported
    component = load_component(out / "batch_score" / "components" / "score.yml")
    assert component.task.append_row_to == "${{outputs.predictions}}"
    assert component.is_deterministic is False


def test_a_datastore_trigger_is_refused_before_anything_is_written(tmp_path):
    config = load_config("dev", REPO)  # dev.yml keeps v1's score-on-new-data trigger
    with pytest.raises(ConfigError, match=r"schedules\.score-on-new-data\.datastore_trigger: "):
        export_v2(config, build_pipelines(config), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export_dev_v2_offline(tmp_path):
    """The CLI path: the env's own backend is v2; this machine cannot reach Azure."""
    proc = subprocess.run(
        [sys.executable, "-m", "amlops.cli", "export", "--root", str(REPO), "--env", "dev-v2",
         str(tmp_path)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.split()[0]) == tmp_path / "train" / "pipeline.yml"
