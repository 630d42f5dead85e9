"""Azure ML v1 without Azure: the SDK's own graph builder over its in-memory pipeline service.

``amlops export`` compiles and "publishes" here, and so do the tests. The pipeline service has
an offline twin in the SDK (``DryRunServiceCaller``); everything else a deploy talks to is
stood in for at the service-client edge, and nowhere else:

- ``OfflineAuth``: an AbstractAuthentication handing out a placeholder token (no Entra ID).
- ``OfflineServiceContext``: service discovery (an HTTP GET to the workspace's discovery URL)
  answers fixed endpoints; nothing calls them, the pipeline service is the dry-run caller.
- ``OfflineSnapshotUploader``: the snapshot upload of a step folder at publish time answers a
  storage id derived from the folder's content.
- The content service HyperDriveStep calls itself while building its node (azureml-train-core's
  ``_search`` makes a ``SnapshotsClient`` of the workspace's service context): for an offline
  workspace only, ``create_snapshot`` answers the same content-derived id without a request.
- ``OfflineWorkspace``: the two workspace reads AutoMLStep makes while building its node (the
  workspace's location and its compute targets, which AutoMLConfig checks are provisioned)
  answer from the workspace object itself; ``InMemoryAssets.compute`` adds a cluster there.
- ``InMemoryAssets``: the dataset, environment, datastore and artifact services as in-memory
  registries that still hand out real azureml Dataset, Environment and Datastore objects.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from amlops.backends.azureml_v1.register import ENV_FINGERPRINT_VAR, Registered
from amlops.backends.dataset_blobs import content_path
from amlops.config import DatasetConfig
from amlops.content import hash_tree

SERVICE_ENDPOINT = "https://dryrun.invalid"
PLACEHOLDER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


OFFLINE_LOCATION = "westeurope"
OFFLINE_VM_SIZE = "STANDARD_DS3_V2"


def _offline_classes() -> tuple[type, type, type]:
    from azureml._restclient.service_context import ServiceContext, _ServiceKeys
    from azureml.core import Workspace
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
        amlops_offline = True  # what the snapshot stand-in recognises (_install_snapshots)

        def _fetch_endpoints(self) -> dict[str, str]:
            return {key: SERVICE_ENDPOINT for key in _ServiceKeys.get_discovery_keys()}

    class OfflineWorkspace(Workspace):
        """Workspace details and the compute list, which the SDK would GET from ARM."""

        offline_computes: dict[str, Any]

        @property
        def location(self) -> str:
            return OFFLINE_LOCATION

        @property
        def compute_targets(self) -> dict[str, Any]:
            return dict(self.offline_computes)

    return OfflineAuth, OfflineServiceContext, OfflineWorkspace


def offline_workspace(subscription_id: str, resource_group: str, name: str) -> Any:
    """A real azureml ``Workspace`` that never calls Azure."""
    offline_auth, offline_context, workspace_class = _offline_classes()
    ws = workspace_class(
        subscription_id,
        resource_group,
        name,
        # A named cloud comes from the SDK's own table; none would fetch Azure's cloud list.
        auth=offline_auth(cloud="AzureCloud"),
        _disable_service_check=True,
    )
    ws.offline_computes = {}
    ws._service_context = offline_context(
        ws.subscription_id, ws.resource_group, ws.name, "ws-id", None, ws._auth
    )
    return ws


def _install_snapshots() -> None:
    """HyperDriveStep snapshots its source folder through the content service while it builds
    its node (azureml.train.hyperdrive._search._create_experiment_dto). The client it uses is
    replaced by a subclass that answers offline workspaces from the folder's content and hands
    every other workspace to the real client, so installing it once per process is safe."""
    from azureml.train.hyperdrive import _search

    real = _search.SnapshotsClient
    if getattr(real, "amlops_offline_aware", False):
        return

    class OfflineAwareSnapshotsClient(real):  # type: ignore[misc, valid-type]
        amlops_offline_aware = True

        def create_snapshot(self, file_or_folder_path, *args, **kwargs):  # noqa: ANN001
            if getattr(self._service_context, "amlops_offline", False):
                return "snapshot-" + hash_tree(Path(file_or_folder_path))[:16]
            return super().create_snapshot(file_or_folder_path, *args, **kwargs)

    _search.SnapshotsClient = OfflineAwareSnapshotsClient


class OfflineSnapshotUploader:
    def __init__(self) -> None:
        self.uploads: list[str] = []

    def upload(self, directory: str) -> str:
        self.uploads.append(directory)
        return "snapshot-" + hash_tree(Path(directory))[:16]


@contextmanager
def sdk_quiet() -> Iterator[None]:
    """Without the SDK's narration of a dry run: the stand-in service prints "mock ..." per
    call and each built step, and azureml-core warns that it cannot reach Azure's cloud
    metadata, all meaningless offline. The SDK's ``warnings`` (advice on settings) still show."""
    sdk_log = logging.getLogger("azureml")
    level = sdk_log.level
    sdk_log.setLevel(logging.ERROR)
    try:
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        sdk_log.setLevel(level)


class DryRun:
    """One simulated workspace pipeline service, and read access to what was published."""

    def __init__(self, workspace: Any):
        from azureml.pipeline.core._aeva_provider import _AevaWorkflowProvider
        from azureml.pipeline.core._restclients.aeva.dryrun_service_caller import (
            DryRunServiceCaller,
        )

        _install_snapshots()
        self.caller = DryRunServiceCaller()
        self.uploader = OfflineSnapshotUploader()
        self.provider = _AevaWorkflowProvider(self.caller, self.uploader, workspace)

    def published_graph(self, published_pipeline_id: str) -> tuple[Any, Any]:
        entity = self.caller._pipeline_entities[published_pipeline_id]
        return (
            self.caller._graph_entities[entity.graph_id],
            self.caller._graph_interfaces[entity.graph_id],
        )

    def module(self, node: Any) -> Any:
        return self.caller._module_entities[node.module_id]

    def modules(self, published_pipeline_id: str) -> dict[str, Any]:
        graph, _ = self.published_graph(published_pipeline_id)
        return {self.module(n).name: self.module(n) for n in graph.module_nodes}

    def node_params(self, published_pipeline_id: str, step: str) -> dict[str, Any]:
        graph, _ = self.published_graph(published_pipeline_id)
        for node in graph.module_nodes:
            if self.module(node).name == step:
                return node_parameters(node)
        raise KeyError(step)


def node_parameters(node: Any) -> dict[str, Any]:
    params = [*node.module_parameters, *(node.module_metadata_parameters or [])]
    return {p.name: p.value for p in params}


class InMemoryAssets:
    """The dataset, environment, datastore and artifact services, held in memory."""

    def __init__(self, workspace: Any):
        self.workspace = workspace
        self.datasets: dict[str, list[tuple[Any, str]]] = {}  # name -> [(definition, fp)]
        self.environments: dict[str, list[Any]] = {}
        self.uploads: list[tuple[str, str, list[str]]] = []
        self.wheels: list[Path] = []
        self._by_id: dict[str, tuple[str, str]] = {}  # registered id -> (name, kind)

    def registered_dataset(self, registered_id: str) -> tuple[str, str]:
        """(name, file | tabular) of the dataset a graph references by id."""
        return self._by_id[registered_id]

    # AssetService
    def latest_dataset(self, name: str) -> Registered | None:
        versions = self.datasets.get(name)
        if not versions:
            return None
        return Registered(name, str(len(versions)), versions[-1][1])

    def register_dataset(
        self, cfg: DatasetConfig, datastore: str, base: str, fp: str, upload_from: Path | None
    ) -> Registered:
        path = base
        if upload_from is not None:
            path = content_path(base, upload_from)[0]
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

        return AzureBlobDatastore(self.workspace, name, f"{name}-container", "storageaccount")

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

    def compute(self, name: str) -> Any:
        """A provisioned AmlCompute cluster, from the payload the compute service would answer."""
        from azureml.core.compute import AmlCompute

        payload = {
            "name": name,
            "id": f"/computes/{name}",
            "location": OFFLINE_LOCATION,
            "tags": None,
            "properties": {
                "computeType": "AmlCompute",
                "description": None,
                "resourceId": None,
                "provisioningState": "Succeeded",
                "provisioningErrors": None,
                "properties": {
                    "vmSize": OFFLINE_VM_SIZE,
                    "vmPriority": "Dedicated",
                    "scaleSettings": None,
                    "subnet": None,
                },
            },
        }
        target = AmlCompute.deserialize(self.workspace, payload)
        self.workspace.offline_computes[name] = target
        return target

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
        if name is not None:
            self._by_id[registered_id] = (name, _kind(dataset))
        dataset._registration = _DatasetRegistration(
            workspace=self.workspace,
            saved_id=saved_id,
            registered_id=registered_id if name else None,
            name=name,
            version=version,
        )
        return dataset


def _kind(dataset: Any) -> str:
    from azureml.data import TabularDataset

    return "tabular" if isinstance(dataset, TabularDataset) else "file"
