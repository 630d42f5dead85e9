"""Conformance, v2 side: a script step gets the same kind of value from each argument on Azure ML
v2 as on the local workspace, and a ParallelStep's partitioned input the same kind of data.

Azure's side is what ``amlops export --backend azureml_v2`` writes, read back through
azure-ai-ml's own loader (the command a component runs, with each ``${{inputs.x}}`` typed by the
component's inputs). The local side is a real run on the local backend (``command.json``), as in
tests/azure/test_conformance.py, whose helpers this reuses. No fakes.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
from helpers import REPO

from amlops.backends.azureml_v2.export import export_v2
from amlops.config import load_config
from amlops.deploy import build_pipelines


def _v1_conformance():
    """tests/azure/test_conformance.py by path: ``tests/azure`` is no package (and ``azure``
    would be the SDK's namespace)."""
    path = REPO / "tests" / "azure" / "test_conformance.py"
    spec = importlib.util.spec_from_file_location("_v1_conformance", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


V1 = _v1_conformance()
copy_repo, local_config, local_kind, run_locally = (
    V1.copy_repo,
    V1.local_config,
    V1.local_kind,
    V1.run_locally,
)
TOKEN = re.compile(r"^\$\{\{(inputs|outputs)\.(\w+)\}\}$")
DATA_TYPES = {"uri_folder", "uri_file", "mltable"}


def v2_kind(component, token: str) -> str:
    """What a script finds in this argument on v2: a literal, a parameter value, or a path."""
    match = TOKEN.match(token)
    if match is None:
        return "literal"
    kind, name = match.groups()
    if kind == "outputs":
        return "folder"
    port = component.inputs[name]
    return "folder" if port.type in DATA_TYPES else "parameter"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance-v2") / "repo"
    copy_repo(root)
    config = load_config("dev-v2", root)
    pipelines = build_pipelines(config)
    export_v2(config, pipelines, root / "export")
    argv = run_locally(local_config(config, root / ".amlops"), pipelines)
    return root / "export", pipelines, argv


def test_script_arguments_are_the_same_kind_of_value_on_v2_and_locally(both):
    from azure.ai.ml import load_component

    out, pipelines, argv = both
    compared = 0
    for pipeline in pipelines:
        for step in pipeline.steps:
            if step.partitions_inputs:
                continue
            component = load_component(out / pipeline.name / "components" / f"{step.name}.yml")
            tokens = component.command.split()[2:]  # after "python main.py"
            given = argv[pipeline.name][step.name][1:]
            v2 = [v2_kind(component, t) for t in tokens]
            local = [local_kind(a, g) for a, g in zip(step.arguments, given, strict=True)]
            assert v2 == local, f"{pipeline.name}.{step.name}"
            compared += len(v2)
    assert compared > 10


def test_partitioned_input_reaches_run_as_the_same_kind_of_data(both):
    from azure.ai.ml import load_component

    out, pipelines, argv = both
    for pipeline in pipelines:
        for step in pipeline.steps:
            if not step.partitions_inputs:
                continue
            component = load_component(out / pipeline.name / "components" / f"{step.name}.yml")
            name = TOKEN.match(component.input_data).group(2)
            # An mltable input gives run() DataFrames, a uri_folder gives file paths.
            v2 = "DataFrame" if component.inputs[name].type == "mltable" else "file paths"
            command = argv[pipeline.name][step.name]
            [local] = [
                "DataFrame" if command[i + 1].split("=", 1)[1].startswith("tabular:") else
                "file paths"
                for i, token in enumerate(command[: command.index("--")])
                if token == "--input"
            ]  # fmt: skip
            assert v2 == local, f"{pipeline.name}.{step.name}"
