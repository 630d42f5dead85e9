"""Conformance: every pipeline under every config gives each step argument the same kind of value
on Azure ML v1 as on the local workspace.

Azure's side is the SDK's own: the pipelines are compiled and published through the dry-run
pipeline service (what ``amlops export`` writes), and each argument's kind is read from the
published graph (a parameter, a DatasetOutputConfig folder, a mounted or downloaded dataset,
a direct dataset = its ID). The local side is a real run on the local backend: the argv each
step's process got (``command.json``), looked at on disk. Fakes: the asset services and the
snapshot upload (see amlops.backends.azureml_v1.offline), nothing on the local side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, copy_repo

from amlops.backends.azureml_v1.export import export_v1
from amlops.backends.local.backend import LocalBackend
from amlops.config import Config, WorkspaceConfig, load_config
from amlops.deploy import build_pipelines, deploy
from amlops.errors import ConfigError
from amlops.spec import Param, Pipeline

# A v2 config's pipelines are checked against v2 in tests/azure_v2/test_conformance_v2.py.
ENVS = sorted(
    p.stem for p in (REPO / "config").glob("*.yml") if "backend: azureml_v2" not in p.read_text()
)
# Budgets cut so the local run takes seconds: the kinds of the arguments do not depend on them.
# (tests/integration/test_tuning_local.py runs the shipped budgets' kinds of search.)
SMALLER = {
    "local-tuning": {"max_total_runs: 12": "max_total_runs: 2", "iterations: 30": "iterations: 2"}
}
# Pipelines v1 refuses to build, each with its one line (README: "Sweeps and AutoML on Azure").
REFUSED_ON_V1 = {
    ("local-tuning", "train_automl"): (
        "pipeline 'train_automl': step 'evaluate' reads 'model', an AutoMLStep's model_output, "
        "which on Azure ML v1 is AutoML's pickled model file and loads only with "
        "azureml-automl-runtime, not in environment 'amlops-train'; run this pipeline locally, "
        "or give that step an environment with AutoML's runtime"
    ),
}


def azure_kind(value: Any) -> str:
    """What a script finds in this argument on Azure ML v1, from the published graph."""
    if isinstance(value, str):
        return "literal"
    if value["type"] == "parameter":
        return "parameter"
    if value["type"] == "dataset" and value["mode"] == "direct":
        return "dataset id"
    return "folder"  # outputs, other steps' outputs, DataPaths, mounted/downloaded datasets


def local_kind(spec_value: Any, given: str) -> str:
    """What a script found in this argument locally: the real argv value, on disk."""
    path = Path(given)
    if path.is_absolute() and path.is_dir():
        return "folder"
    if path.is_absolute() and path.is_file():
        return "file"
    return "parameter" if isinstance(spec_value, Param) else "literal"


def azure_user_arguments(step_doc: dict, spec_args: tuple) -> list[Any]:
    """A ParallelRunStep's graph holds the driver's own flags too; the user's arguments are
    the run of it that matches them in order (literals equal, references by name)."""
    args = step_doc["arguments"]
    if step_doc["kind"] in ("PythonScriptStep", "HyperDriveStep"):
        return args
    want = [a if isinstance(a, str) else None for a in spec_args]
    for start in range(len(args) - len(want) + 1):
        window = args[start : start + len(want)]
        if all(w is None or w == a for w, a in zip(want, window, strict=True)):
            return window
    raise AssertionError(f"{step_doc['name']}: user arguments not found in {args}")


def partitioned_kinds(step_doc: dict) -> list[str]:
    return [
        "DataFrame" if i["mode"] == "direct" else "file paths"
        for i in step_doc["inputs"]
        if i["type"] == "dataset" and i.get("parameter") or i.get("dataset_type") == "tabular"
    ]


def local_config(config: Config, workspace: Path) -> Config:
    return replace(config, workspace=WorkspaceConfig(backend="local", path=workspace))


def run_locally(config: Config, pipelines: list[Pipeline]) -> dict[str, dict[str, list[str]]]:
    """Register, build and run every pipeline on a real local workspace; each step's argv."""
    backend = LocalBackend(config.workspace.path)
    try:
        manifest = deploy(config, backend, pipelines, ["register", "build", "run"], plan=False)
    finally:
        backend.close()
    argv: dict[str, dict[str, list[str]]] = {}
    for run in manifest.runs:
        assert run["status"] == "Completed", run
        folder = Path(run["folder"])
        argv[run["pipeline"]] = {s["name"]: script_argv(folder / s["name"]) for s in run["steps"]}
    return argv


def script_argv(step_folder: Path) -> list[str]:
    """What the step's script got: a sweep's script is its trials' (the first one's argv)."""
    trial = step_folder / "trials" / "0" / "command.json"
    return json.loads((trial if trial.is_file() else step_folder / "command.json").read_text())


@dataclass(frozen=True)
class Both:
    env: str
    config: Config
    pipelines: list[Pipeline]
    docs: dict[str, dict]  # pipeline -> what amlops export wrote for it
    argv: dict[str, dict[str, list[str]]]  # pipeline -> step -> the argv of its local run
    refused: dict[str, str]  # pipeline -> the line v1's build refused it with


@pytest.fixture(scope="module", params=ENVS)
def both(request, tmp_path_factory) -> Both:
    env = request.param
    root = tmp_path_factory.mktemp(f"conformance-{env}") / "repo"
    copy_repo(root, sample=False)  # every config as the user has it
    file = root / "config" / f"{env}.yml"
    for old, new in SMALLER.get(env, {}).items():
        assert old in file.read_text(), old
        file.write_text(file.read_text().replace(old, new))
    config = load_config(env, root)
    built, refused = [], {}
    for pipeline in build_pipelines(config):
        try:
            [path] = export_v1(config, [pipeline], root / "export")
        except ConfigError as exc:
            refused[pipeline.name] = str(exc)
            continue
        built.append((pipeline, json.loads(path.read_text())))
    pipelines = [p for p, _ in built]
    docs = {doc["name"]: doc for _, doc in built}
    argv = run_locally(local_config(config, root / ".amlops"), pipelines)
    return Both(env, config, pipelines, docs, argv, refused)


def argument_kinds(step, doc: dict, command: list[str]) -> tuple[list[str], list[str]]:
    """(on Azure, locally) the kind of each of the step's own arguments."""
    if step.partitions_inputs:  # the driver's command: the user's arguments follow "--"
        given = command[command.index("--") + 1 :]
    else:
        given = command[1:]  # after the script's own name
    # A trial's sampled "--<name> <value>" pairs follow; HyperDrive appends them on Azure too.
    given = given[: len(step.arguments)]
    azure = [azure_kind(a) for a in azure_user_arguments(doc, step.arguments)]
    local = [local_kind(spec, g) for spec, g in zip(step.arguments, given, strict=True)]
    return azure, local


def step_doc(docs: dict, pipeline: str, step: str) -> dict:
    return next(s for s in docs[pipeline]["steps"] if s["name"] == step)


def test_v1_refuses_only_what_the_readme_lists(both):
    expected = {p: line for (env, p), line in REFUSED_ON_V1.items() if env == both.env}
    assert both.refused == expected


def test_every_argument_is_the_same_kind_of_value_on_both(both):
    env, pipelines, docs, argv = both.env, both.pipelines, both.docs, both.argv
    compared = 0
    for pipeline in pipelines:
        for step in pipeline.steps:
            doc = step_doc(docs, pipeline.name, step.name)
            azure, local = argument_kinds(step, doc, argv[pipeline.name][step.name])
            assert azure == local, f"{env}: {pipeline.name}.{step.name}"
            compared += len(step.arguments)
    assert compared > 10


def test_partitioned_inputs_reach_run_as_the_same_kind_of_data(both):
    env, pipelines, docs, argv = both.env, both.pipelines, both.docs, both.argv
    for pipeline in pipelines:
        for step in pipeline.steps:
            if not step.partitions_inputs:
                continue
            doc = next(s for s in docs[pipeline.name]["steps"] if s["name"] == step.name)
            command = argv[pipeline.name][step.name]
            local = [
                "DataFrame" if command[i + 1].split("=", 1)[1].startswith("tabular:") else
                "file paths"
                for i, token in enumerate(command[: command.index("--")])
                if token == "--input"
            ]  # fmt: skip
            assert partitioned_kinds(doc) == local, f"{env}: {pipeline.name}.{step.name}"


def test_script_steps_receive_only_paths_and_values(both):
    """The contract itself, on Azure's side: no dataset ID reaches a script step's argv."""
    env, pipelines, docs = both.env, both.pipelines, both.docs
    for pipeline in pipelines:
        for step in pipeline.steps:
            if step.partitions_inputs:
                continue
            doc = next(s for s in docs[pipeline.name]["steps"] if s["name"] == step.name)
            kinds = {azure_kind(a) for a in doc["arguments"]} | {
                azure_kind(i) for i in doc["inputs"]
            }
            assert "dataset id" not in kinds, f"{env}: {pipeline.name}.{step.name}"


def sdk_prep_graph(prep) -> dict:
    """prep as a v1 user wrote it before: the SDK's own PythonScriptStep given the tabular
    diabetes dataset with as_named_input (amlops' compiler refuses to build this), published
    through the dry-run service and read back as amlops export reads a graph."""
    from azureml.data import OutputFileDatasetConfig
    from azureml.pipeline.core import Pipeline as AmlPipeline
    from azureml.pipeline.core import PipelineParameter
    from azureml.pipeline.steps import PythonScriptStep

    from amlops.backends.azureml_v1.export import graph_document
    from amlops.backends.azureml_v1.offline import (
        PLACEHOLDER_SUBSCRIPTION,
        SERVICE_ENDPOINT,
        DryRun,
        InMemoryAssets,
        offline_workspace,
    )
    from amlops.config import DatasetConfig
    from amlops.spec import DatasetInput, Output
    from amlops.spec import Pipeline as SpecPipeline

    workspace = offline_workspace(PLACEHOLDER_SUBSCRIPTION, "rg", "ws")
    service, assets = DryRun(workspace), InMemoryAssets(workspace)
    assets.register_dataset(DatasetConfig("diabetes", "tabular"), "training", "diabetes", "", None)
    tabular = assets.dataset("diabetes", "latest")

    def sdk(value):
        if isinstance(value, Param):
            return PipelineParameter(name=value.name, default_value=value.default)
        if isinstance(value, DatasetInput):
            return tabular.as_named_input(value.input_name)  # direct: the only tabular mode
        if isinstance(value, Output):
            return OutputFileDatasetConfig(name=value.name)
        return str(value)

    step = PythonScriptStep(
        name=prep.name, script_name=prep.script, source_directory=str(prep.source_dir),
        arguments=[sdk(a) for a in prep.arguments], compute_target=("cpu-cluster", "AmlCompute"),
    )  # fmt: skip
    aml = AmlPipeline(
        workspace,
        [step],
        default_datastore=assets.default_datastore(),
        _workflow_provider=service.provider,
        _service_endpoint=SERVICE_ENDPOINT,
    )
    published = aml.publish(name="train", description="prep")
    return graph_document(service, assets, published.id, SpecPipeline("train", [prep]))


def test_the_old_tabular_prep_binding_is_caught(both):
    """What the review found: prep read the tabular diabetes dataset. The graph the SDK builds
    for that binding gives prep's script the dataset's ID where the local run gave a folder."""
    if both.env != "dev":
        pytest.skip("shown once, on the dev config")
    config, argv = both.config, both.argv
    tabular = tuple(
        replace(ds, kind="tabular") if ds.name == "diabetes" else ds for ds in config.datasets
    )
    train = [p for p in both.pipelines if p.name == "train"]
    # amlops itself refuses to compile it (deploy refuses it earlier still: test_binding.py).
    with pytest.raises(ConfigError, match="step 'prep' reads a tabular dataset"):
        export_v1(replace(config, datasets=tabular), train, Path(config.root) / "export-tabular")
    [prep] = [s for s in train[0].steps if s.name == "prep"]
    docs = {"train": sdk_prep_graph(prep)}
    azure, local = argument_kinds(prep, step_doc(docs, "train", "prep"), argv["train"]["prep"])
    assert azure != local
    at = [i for i, (a, b) in enumerate(zip(azure, local, strict=True)) if a != b]
    assert [prep.arguments[i - 1] for i in at] == ["--data"]
    assert [(azure[i], local[i]) for i in at] == [("dataset id", "folder")]
