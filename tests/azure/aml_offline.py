"""Offline Azure ML v1 helpers: the real SDK objects over its in-memory DryRunServiceCaller.

Fakes live only where the SDK has no offline machinery, each at the service-client edge:

- ``OfflineAuth``: an AbstractAuthentication that hands out a dummy token (no AAD).
- ``OfflineServiceContext``: service discovery (an HTTP GET to the workspace's discovery URL)
  returns fixed endpoints; nothing ever calls them, the pipeline service is the dry-run caller.
- ``OfflineSnapshotUploader``: the snapshot upload (SnapshotsClient HTTP) of a step folder at
  publish time returns a storage id derived from the folder's content.
- ``OfflineAssets``: the dataset, environment, datastore and artifact services (REST, no dry
  run) as in-memory registries that still hand out real azureml Dataset, Environment and
  AzureBlobDatastore objects.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amlops.backends.azureml_v1.register import ENV_FINGERPRINT_VAR, Registered
from amlops.content import hash_tree

REPO = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SERVICE_ENDPOINT = "https://dryrun.invalid"

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


def _offline_classes() -> tuple[type, type]:
    from azureml._restclient.service_context import ServiceContext, _ServiceKeys
    from azureml.core.authentication import AbstractAuthentication

    class OfflineAuth(AbstractAuthentication):
        def _get_arm_token(self) -> str:
            return "offline-token"

        def _get_graph_token(self) -> str:
            return "offline-token"

        def _get_azureml_client_token(self) -> str:
            return "offline-token"

        def _get_all_subscription_ids(self) -> tuple[list, None]:
            return [], None

        def _get_workspace(self, subscription_id, resource_group, name):  # noqa: ANN001
            return None

    class OfflineServiceContext(ServiceContext):
        def _fetch_endpoints(self) -> dict[str, str]:
            return {key: SERVICE_ENDPOINT for key in _ServiceKeys.get_discovery_keys()}

    return OfflineAuth, OfflineServiceContext


class OfflineSnapshotUploader:
    def __init__(self) -> None:
        self.uploads: list[str] = []

    def upload(self, directory: str) -> str:
        self.uploads.append(directory)
        return "snapshot-" + hash_tree(Path(directory))[:16]


class DryRun:
    """One simulated workspace pipeline service, shared by everything a test deploys."""

    def __init__(self, workspace: Any):
        from azureml.pipeline.core._aeva_provider import _AevaWorkflowProvider
        from azureml.pipeline.core._restclients.aeva.dryrun_service_caller import (
            DryRunServiceCaller,
        )

        self.caller = DryRunServiceCaller()
        self.uploader = OfflineSnapshotUploader()
        self.provider = _AevaWorkflowProvider(self.caller, self.uploader, workspace)

    def published_graph(self, published_pipeline_id: str) -> tuple[Any, Any]:
        entity = self.caller._pipeline_entities[published_pipeline_id]
        return (
            self.caller._graph_entities[entity.graph_id],
            self.caller._graph_interfaces[entity.graph_id],
        )

    def modules(self, published_pipeline_id: str) -> dict[str, Any]:
        graph, _ = self.published_graph(published_pipeline_id)
        return {
            self.caller._module_entities[n.module_id].name: self.caller._module_entities[
                n.module_id
            ]
            for n in graph.module_nodes
        }

    def node_params(self, published_pipeline_id: str, step: str) -> dict[str, Any]:
        graph, _ = self.published_graph(published_pipeline_id)
        for node in graph.module_nodes:
            if self.caller._module_entities[node.module_id].name == step:
                params = [*node.module_parameters, *(node.module_metadata_parameters or [])]
                return {p.name: p.value for p in params}
        raise KeyError(step)


class OfflineAssets:
    """In-memory dataset/environment/datastore/artifact services (see module docstring)."""

    def __init__(self, workspace: Any, datastore_types: dict[str, str] | None = None):
        self.workspace = workspace
        self.datasets: dict[str, list[tuple[Any, str]]] = {}  # name -> [(cfg, fingerprint)]
        self.environments: dict[str, list[Any]] = {}
        self.uploads: list[tuple[str, str, list[str]]] = []
        self.wheels: list[Path] = []

    # AssetService
    def latest_dataset(self, name: str) -> Registered | None:
        versions = self.datasets.get(name)
        if not versions:
            return None
        return Registered(name, str(len(versions)), versions[-1][1])

    def register_dataset(self, cfg, datastore, path, fp, upload_from) -> Registered:  # noqa: ANN001
        if upload_from is not None:
            files = sorted(p.name for p in Path(upload_from).rglob("*") if p.is_file())
            self.uploads.append((datastore, path, files))
        self.datasets.setdefault(cfg.name, []).append(((cfg.kind, datastore, path), fp))
        return Registered(cfg.name, str(len(self.datasets[cfg.name])), fp)

    def latest_environment(self, name: str) -> Registered | None:
        versions = self.environments.get(name)
        if not versions:
            return None
        env = versions[-1]
        return Registered(name, env.version, env.environment_variables.get(ENV_FINGERPRINT_VAR))

    def register_environment(self, env: Any) -> Registered:
        versions = self.environments.setdefault(env.name, [])
        env.version = str(len(versions) + 1)
        versions.append(env)
        return Registered(env.name, env.version, env.environment_variables[ENV_FINGERPRINT_VAR])

    def private_wheel_url(self, wheel: Path) -> str:
        self.wheels.append(wheel)
        return f"https://storage.invalid/wheels/{wheel.name}"

    # compile.Resolver
    def datastore(self, name: str) -> Any:
        from azureml.data.azure_storage_datastore import AzureBlobDatastore

        return AzureBlobDatastore(self.workspace, name, f"{name}-container", "stamlopstest")

    def default_datastore(self) -> Any:
        return self.datastore("workspaceblobstore")

    def dataset(self, name: str, version: str | int) -> Any:
        from azureml.core import Dataset

        versions = self.datasets.get(name)
        if not versions:
            raise KeyError(f"dataset {name!r} is not registered")
        number = len(versions) if version == "latest" else int(version)
        (kind, datastore, path), _ = versions[number - 1]
        target = (self.datastore(datastore), path)
        if kind == "tabular":
            ds = Dataset.Tabular.from_delimited_files(
                path=target, validate=False, infer_column_types=False
            )
        else:
            ds = Dataset.File.from_files(path=target, validate=False)
        return self._register(ds, name, number)

    def environment(self, name: str) -> Any:
        versions = self.environments.get(name)
        if not versions:
            raise KeyError(f"environment {name!r} is not registered")
        return versions[-1]

    def saved(self, dataset: Any) -> Any:
        return self._register(dataset, None, None)

    def _register(self, dataset: Any, name: str | None, version: int | None) -> Any:
        from azureml.data.abstract_dataset import _DatasetRegistration

        saved_id = hashlib.sha256(dataset._dataflow.to_json().encode()).hexdigest()[:32]
        # As in the service: a registered dataset's id is the same for all of its versions.
        registered_id = hashlib.sha256(f"registered:{name}".encode()).hexdigest()[:32]
        dataset._registration = _DatasetRegistration(
            workspace=self.workspace,
            saved_id=saved_id,
            registered_id=registered_id if name else None,
            name=name,
            version=version,
        )
        return dataset


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
