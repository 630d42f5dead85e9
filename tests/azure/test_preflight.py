"""Preflight through the real azure-mgmt-machinelearningservices client, read-only.

Faked edge: the HTTP transport. A requests adapter mounted on the client's real azure-core
RequestsTransport answers ARM GETs from a table (the workspace, compute and datastore
resources); a credential object hands out a dummy token. Everything above the socket (URL
building, policies, error mapping, model deserialisation) is the SDK's own.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urlparse

import pytest
import requests
import urllib3
from aml_offline import CONFIG, batch_pipeline, chain_pipeline, write_config

from amlops.backends.azureml_v1.backend import needs
from amlops.backends.azureml_v1.preflight import PreflightError, mgmt_client, preflight
from amlops.backends.coordinates import Coordinates
from amlops.errors import ConfigError

SUB, RG, WS = "00000000-0000-0000-0000-000000000000", "rg-ml", "mlw-ml"
BASE = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices"
WORKSPACE = f"{BASE}/workspaces/{WS}"
NOT_FOUND = (404, {"error": {"code": "ResourceNotFound", "message": "was not found"}})


class ArmAdapter(requests.adapters.BaseAdapter):
    """Canned ARM responses by path; records every request it saw."""

    def __init__(self, routes: dict[str, tuple[int, dict]]):
        super().__init__()
        self.routes = routes
        self.seen: list[tuple[str, str]] = []

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003
        path = urlparse(request.url).path
        self.seen.append((request.method, path))
        status, body = self.routes.get(path, NOT_FOUND)
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(data), headers=headers, status=status, preload_content=False
        )
        return requests.adapters.HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        pass


class DummyCredential:
    def __init__(self, error: Exception | None = None):
        self.error = error

    def get_token(self, *scopes, **kwargs):  # noqa: ANN002, ANN003
        from azure.core.credentials import AccessToken

        if self.error:
            raise self.error
        return AccessToken("dummy-token", 4102444800)

    def get_token_info(self, *scopes, options=None):  # noqa: ANN002
        from azure.core.credentials import AccessTokenInfo

        if self.error:
            raise self.error
        return AccessTokenInfo("dummy-token", 4102444800)


def routes(**overrides: tuple[int, dict]) -> dict[str, tuple[int, dict]]:
    table = {
        WORKSPACE: (
            200,
            {
                "id": WORKSPACE,
                "name": WS,
                "location": "westeurope",
                "properties": {"workspaceId": "ws-guid", "encryption": {"status": "Disabled"}},
            },
        ),
        f"{WORKSPACE}/computes/cpu-cluster": (
            200,
            {
                "name": "cpu-cluster",
                "properties": {
                    "computeType": "AmlCompute",
                    "properties": {"scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0}},
                },
            },
        ),
    }
    for role, name, kind, creds in (
        ("training", "training_data", "AzureBlob", "None"),
        ("scoring", "scoring_data", "AzureBlob", "None"),
        ("trigger", "trigger_data", "AzureBlob", "AccountKey"),
    ):
        del role
        table[f"{WORKSPACE}/datastores/{name}"] = (
            200,
            {"properties": {"datastoreType": kind, "credentials": {"credentialsType": creds}}},
        )
    for key, value in overrides.items():
        table[key] = value
    return table


def client(table, credential=None):
    from azure.core.pipeline.transport import RequestsTransport

    adapter = ArmAdapter(table)
    session = requests.Session()
    session.mount("https://", adapter)
    transport = RequestsTransport(session=session, session_owner=False)
    mgmt = mgmt_client(credential or DummyCredential(), SUB, transport=transport)
    return mgmt, adapter


COORDS = Coordinates(
    subscription_id=SUB,
    resource_group=RG,
    workspace_name=WS,
    compute="cpu-cluster",
    datastore_names={"training": "training_data", "scoring": "scoring_data"},
)


@pytest.fixture
def config_needs(project):
    config = write_config(project)
    return needs(config, [chain_pipeline(project), batch_pipeline(project)])


def test_everything_exists(config_needs):
    mgmt, adapter = client(routes())
    facts = preflight(mgmt, COORDS, config_needs)
    assert facts.workspace_id == "ws-guid" and facts.compute_max_nodes == 4
    assert set(facts.datastores) == {"training_data", "scoring_data"}
    assert facts.datastores["training_data"].datastore_type == "AzureBlob"
    assert not facts.customer_managed_key and not facts.private_link
    assert {method for method, _ in adapter.seen} == {"GET"}  # preflight changes nothing


def test_needs_come_from_config_and_pipelines(config_needs):
    found = {(n.what, n.value, n.where.split(": ")[-1]) for n in config_needs}
    assert ("datastore", "training", "datasets.diabetes") in found
    assert ("datastore", "scoring", "datasets.lookup") in found
    assert ("datastore", "scoring", "scoring_data") in found  # the batch DataPathParam
    assert ("node_count", 2, "step 'score'") in found


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        (
            {WORKSPACE: NOT_FOUND},
            PreflightError,
            re.escape(f"workspace '{WS}' (resource group '{RG}', subscription {SUB}): ")
            + "workspace not found",
        ),
        (
            {WORKSPACE: (403, {"error": {"code": "AuthorizationFailed", "message": "no"}})},
            PreflightError,
            "access denied reading the workspace",
        ),
        (
            {f"{WORKSPACE}/computes/cpu-cluster": NOT_FOUND},
            PreflightError,
            "compute cluster 'cpu-cluster' in workspace .*: compute not found "
            r"\(compute.default in config, or terraform output compute_cluster_name\)",
        ),
        (
            {
                f"{WORKSPACE}/computes/cpu-cluster": (
                    200,
                    {"properties": {"computeType": "ComputeInstance", "properties": {}}},
                )
            },
            PreflightError,
            "compute 'cpu-cluster' is a ComputeInstance, not an AmlCompute cluster",
        ),
        (
            {f"{WORKSPACE}/datastores/training_data": NOT_FOUND},
            PreflightError,
            r"datasets.diabetes: datastore 'training_data' does not exist in workspace 'mlw-ml'",
        ),
    ],
)
def test_each_failure_is_one_clear_error(config_needs, override, error, message):
    mgmt, adapter = client(routes(**override))
    with pytest.raises(error, match=message) as info:
        preflight(mgmt, COORDS, config_needs)
    assert "\n" not in str(info.value)
    assert {method for method, _ in adapter.seen} == {"GET"}


def test_node_count_above_cluster_max(project):
    config = write_config(project)
    wide = batch_pipeline(project, node_count=8)
    mgmt, _ = client(routes())
    with pytest.raises(ConfigError, match=r"step 'score': node_count 8 is more than compute"):
        preflight(mgmt, COORDS, needs(config, [wide]))


def test_credentials_that_fail_say_so():
    from azure.core.exceptions import ClientAuthenticationError

    failing = DummyCredential(ClientAuthenticationError("AADSTS700024: assertion expired"))
    mgmt, adapter = client(routes(), credential=failing)
    with pytest.raises(PreflightError, match="cannot authenticate to Azure: AADSTS700024"):
        preflight(mgmt, COORDS, [])
    assert adapter.seen == []


def test_customer_managed_key_and_private_link_are_reported():
    body = {
        "name": WS,
        "properties": {
            "encryption": {"status": "Enabled"},
            "privateEndpointConnections": [{"id": "pe-1"}],
        },
    }
    mgmt, _ = client(routes(**{WORKSPACE: (200, body)}))
    facts = preflight(mgmt, COORDS, [])
    assert facts.customer_managed_key and facts.private_link


def test_disabled_trigger_datastore_is_not_required(project):
    text = CONFIG + (
        "schedules:\n  watch:\n    pipeline: ingest\n    enabled: false\n"
        "    datastore_trigger: {datastore: trigger, path: incoming}\n"
    )
    config = write_config(project, text)
    assert all(n.value != "trigger" for n in needs(config, []))
    enabled = write_config(project, text.replace("enabled: false", "enabled: true"))
    assert any(n.value == "trigger" for n in needs(enabled, []))


def test_connect_resolves_coordinates_then_stops_at_preflight(project, monkeypatch, caplog):
    """connect(): config + env override + auth + preflight; a missing workspace changes nothing."""
    from amlops.backends.azureml_v1.backend import AzureMLv1Backend
    from amlops.backends.terraform_outputs import TerraformSource

    text = CONFIG.replace(
        "  name: mlw-amlops-test\n", "  name: mlw-amlops-test\n  auth: service_principal\n"
    )
    config = write_config(project, text)
    monkeypatch.setenv("AMLOPS_WORKSPACE_NAME", "mlw-other")
    monkeypatch.setenv("AMLOPS_RESOURCE_GROUP", RG)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cr3t-never-logged")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    mgmt, adapter = client(routes())
    transport = mgmt._client._pipeline._transport
    caplog.set_level("INFO")
    with pytest.raises(PreflightError, match="workspace 'mlw-other'.*workspace not found") as info:
        AzureMLv1Backend.connect(
            config,
            plan=True,
            terraform=TerraformSource(),  # nothing from Terraform: config and env only
            credential=DummyCredential(),
            mgmt_options={"transport": transport},
        )
    assert adapter.seen == [("GET", f"{BASE}/workspaces/mlw-other")]
    assert "s3cr3t" not in caplog.text and "s3cr3t" not in str(info.value)
