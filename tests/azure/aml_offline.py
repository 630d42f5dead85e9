"""Offline Azure ML v1 helpers for the tests: sample configs and pipelines.

The SDK objects run over its in-memory DryRunServiceCaller; the few stand-ins at the
service-client edge (auth, service discovery, snapshot upload, the asset services) are
amlops' own, in ``amlops.backends.azureml_v1.offline``, where their docstring says why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amlops.backends.azureml_v1.offline import (  # noqa: F401 (re-exported for the tests)
    PLACEHOLDER_SUBSCRIPTION as SUBSCRIPTION,
)
from amlops.backends.azureml_v1.offline import (
    SERVICE_ENDPOINT,
    DryRun,
    InMemoryAssets,
)

REPO = Path(__file__).resolve().parents[2]

CONDA = """\
name: test-env
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip:
      - pandas
      - azureml-core
      - azureml-dataset-runtime[fuse,pandas]
"""


# The edges the SDK cannot serve offline live in amlops itself (``amlops export`` uses them).
OfflineAssets = InMemoryAssets


def write_step(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def import_repo_pipeline(name: str) -> Callable[..., Any] | None:
    """``pipelines/<name>.py: build`` from this repo, or None while it does not exist yet."""
    if not (REPO / "pipelines" / f"{name}.py").is_file():
        return None
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    module = __import__(f"pipelines.{name}", fromlist=["build"])
    return module.build


CONFIG = """\
workspace:
  backend: azureml_v1
  subscription_id: 00000000-0000-0000-0000-000000000000
  resource_group: rg-amlops-test
  name: mlw-amlops-test
compute:
  default: cpu-cluster
datasets:
  diabetes:
    kind: file
    source: sklearn:diabetes
    datastore: training
    datastore_path: diabetes
    upload: true
  lookup:
    kind: file
    datastore: scoring
    datastore_path: lookup
environments:
  test-env:
    conda_file: envs/test.yml
pipelines:
  chain: {}
  batch: {}
  ingest: {}
"""


def write_config(root: Path, text: str = CONFIG, env: str = "test") -> Any:
    from amlops.config import load_config

    (root / "config").mkdir(exist_ok=True)
    (root / "config" / f"{env}.yml").write_text(text)
    return load_config(env, root)


def facts(**overrides: Any) -> Any:
    from amlops.backends.azureml_v1.preflight import DatastoreFacts, WorkspaceFacts

    values: dict[str, Any] = {
        "workspace_id": "ws-id",
        "location": "westeurope",
        "compute": "cpu-cluster",
        "compute_max_nodes": 4,
        "customer_managed_key": False,
        "private_link": False,
        "datastores": {
            "training": DatastoreFacts("training", "AzureBlob", None),
            "scoring": DatastoreFacts("scoring", "AzureBlob", None),
            "trigger": DatastoreFacts("trigger", "AzureBlob", "AccountKey"),
        },
    }
    values.update(overrides)
    return WorkspaceFacts(**values)


def make_backend(
    workspace: Any, config: Any, assets: OfflineAssets, dry_run: DryRun, **kwargs: Any
) -> Any:
    from amlops.backends.azureml_v1.backend import AzureMLv1Backend

    return AzureMLv1Backend(
        workspace,
        config=config,
        assets=assets,
        facts=kwargs.pop("facts", facts()),
        workflow_provider=dry_run.provider,
        service_endpoint=SERVICE_ENDPOINT,
        **kwargs,
    )


def chain_pipeline(root: Path, *, reuse_train: bool = False) -> Any:
    """prep -> train: Params, an Output consumed downstream, a registered DatasetInput."""
    from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep

    prepared, model = Output("prepared"), Output("model")
    seed = Param("seed", 42)
    return Pipeline(
        "chain",
        [
            ScriptStep(
                "prep",
                root / "steps" / "prep",
                arguments=("--data", DatasetInput("diabetes"), "--seed", seed, "--out", prepared),
                environment="test-env",
            ),
            ScriptStep(
                "train",
                root / "steps" / "train",
                arguments=(
                    "--prepared",
                    prepared.as_input(),
                    "--lr",
                    Param("learning_rate", 0.05),
                    "--seed",
                    seed,
                    "--model",
                    model,
                    "--trees",
                    200,
                ),  # fmt: skip
                environment="test-env",
                allow_reuse=reuse_train,
            ),
        ],
        description="prep and train",
    )


def batch_pipeline(root: Path, **step: Any) -> Any:
    """One ParallelStep over a tabular DataPathParam, a file side input, Params for knobs."""
    from amlops.spec import DataPathParam, DatasetInput, Output, ParallelStep, Param, Pipeline

    fields: dict[str, Any] = {
        "mini_batch_size": Param("mini_batch_size", "1MB"),
        "error_threshold": Param("error_threshold", 10),
        "process_count_per_node": Param("process_count_per_node", 2),
        "node_count": 2,
        "run_max_try": 2,
        "allowed_failed_percent": 5.0,
        "append_row_file_name": "predictions.txt",
        "allow_reuse": False,
    }
    fields.update(step)
    return Pipeline(
        "batch",
        [
            ParallelStep(
                "score",
                root / "steps" / "score",
                inputs=(DataPathParam("scoring_data", "scoring", "incoming", kind="tabular"),),
                side_inputs=(DatasetInput("lookup"),),
                output=Output("predictions"),
                arguments=("--model_name", Param("model_name", "diabetes-model")),
                environment="test-env",
                **fields,
            )
        ],
    )


def ingest_pipeline(root: Path) -> Any:
    """A ScriptStep reading a DataPathParam: what a data-change trigger can bind."""
    from amlops.spec import DataPathParam, Output, Pipeline, ScriptStep

    return Pipeline(
        "ingest",
        [
            ScriptStep(
                "prep",
                root / "steps" / "prep",
                arguments=(
                    "--incoming",
                    DataPathParam("incoming", "trigger", "incoming"),
                    "--out",
                    Output("clean"),
                ),  # fmt: skip
                environment="test-env",
            )
        ],
    )
