"""Read-only checks through azure-mgmt-machinelearningservices before any stage changes anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from amlops.backends.coordinates import Coordinates
from amlops.backends.sdk_errors import first_line
from amlops.errors import AmlopsError, ConfigError

# azure-mgmt-machinelearningservices 1.0.1 speaks api-version 2020-08-01, which predates ARM
# datastores; they are read through the same client pipeline at the first version that has them.
DATASTORE_API_VERSION = "2023-04-01"


class PreflightError(AmlopsError):
    """Something config or Terraform names does not exist (or is unusable) in Azure."""


@dataclass(frozen=True)
class DatastoreFacts:
    name: str
    datastore_type: str  # AzureBlob, AzureFile, AzureDataLakeGen2, ...
    credentials_type: str | None  # AccountKey, Sas, ServicePrincipal, None (identity-based)


@dataclass(frozen=True)
class WorkspaceFacts:
    workspace_id: str | None
    location: str | None
    compute: str
    compute_max_nodes: int
    customer_managed_key: bool
    private_link: bool
    datastores: dict[str, DatastoreFacts] = field(default_factory=dict)


@dataclass(frozen=True)
class Need:
    """Something the deploy will use, and the config key that asks for it (for the message)."""

    what: str  # "datastore" | "node_count"
    value: Any
    where: str


def mgmt_client(credential: Any, subscription_id: str, **kwargs: Any) -> Any:
    from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient

    return MachineLearningServicesMgmtClient(credential, subscription_id, **kwargs)


def preflight(client: Any, coords: Coordinates, needs: Sequence[Need]) -> WorkspaceFacts:
    """Check workspace, compute cluster, datastores and node counts; raise the first failure."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    rg, name = coords.resource_group, coords.workspace_name
    where_ws = f"workspace {name!r} (resource group {rg!r}, subscription {coords.subscription_id})"
    try:
        workspace = client.workspaces.get(rg, name)
    except ClientAuthenticationError as exc:
        raise PreflightError(f"cannot authenticate to Azure: {first_line(exc)}") from None
    except HttpResponseError as exc:
        raise PreflightError(f"{where_ws}: {_reason(exc, 'workspace')}") from None
    encryption = getattr(workspace, "encryption", None)
    facts_cmk = str(getattr(encryption, "status", "") or "").lower() == "enabled"
    private = bool(getattr(workspace, "private_endpoint_connections", None)) or bool(
        getattr(workspace, "private_link_count", 0)
    )
    try:
        compute = client.machine_learning_compute.get(rg, name, coords.compute)
    except HttpResponseError as exc:
        raise PreflightError(
            f"compute cluster {coords.compute!r} in {where_ws}: {_reason(exc, 'compute')} "
            "(compute.default in config, or terraform output compute_cluster_name)"
        ) from None
    props = compute.properties
    if getattr(props, "compute_type", None) != "AmlCompute":
        raise PreflightError(
            f"compute {coords.compute!r} is a {getattr(props, 'compute_type', '?')}, not an "
            "AmlCompute cluster; pipelines here need a cluster"
        )
    scale = getattr(getattr(props, "properties", None), "scale_settings", None)
    max_nodes = int(getattr(scale, "max_node_count", 0) or 0)
    datastores: dict[str, DatastoreFacts] = {}
    for need in needs:
        if need.what == "node_count":
            if need.value > max_nodes:
                raise ConfigError(
                    f"{need.where}: node_count {need.value} is more than compute cluster "
                    f"{coords.compute!r} allows (max_node_count {max_nodes})"
                )
        elif need.what == "datastore":
            actual = coords.datastore(need.value)
            if actual not in datastores:
                datastores[actual] = _datastore(client, coords, actual, need.where)
    return WorkspaceFacts(
        workspace_id=getattr(workspace, "workspace_id", None),
        location=getattr(workspace, "location", None),
        compute=coords.compute,
        compute_max_nodes=max_nodes,
        customer_managed_key=facts_cmk,
        private_link=private,
        datastores=datastores,
    )


def _datastore(client: Any, coords: Coordinates, name: str, where: str) -> DatastoreFacts:
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    url = (
        f"/subscriptions/{coords.subscription_id}/resourceGroups/{coords.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{coords.workspace_name}"
        f"/datastores/{name}"
    )
    response = client._send_request(
        HttpRequest("GET", url, params={"api-version": DATASTORE_API_VERSION})
    )
    if response.status_code == 404:
        raise PreflightError(
            f"{where}: datastore {name!r} does not exist in workspace {coords.workspace_name!r}"
        )
    try:
        response.raise_for_status()
    except HttpResponseError as exc:
        raise PreflightError(f"{where}: datastore {name!r}: {_reason(exc, 'datastore')}") from None
    props = (response.json() or {}).get("properties") or {}
    credentials = props.get("credentials") or {}
    return DatastoreFacts(
        name=name,
        datastore_type=str(props.get("datastoreType") or "unknown"),
        credentials_type=credentials.get("credentialsType"),
    )


def _reason(exc: Any, what: str) -> str:
    status = getattr(exc, "status_code", None)
    if status == 404:
        return f"{what} not found"
    if status == 403:
        return f"access denied reading the {what} (the identity needs at least Reader)"
    return first_line(exc)
