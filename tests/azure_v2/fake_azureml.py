"""An Azure ML workspace behind an azure-core transport: the one fake in the v2 deploy tests.

``FakeAzureML`` is an ``azure.core.pipeline.transport.HttpTransport`` given to ``MLClient`` as
``transport=``: azure-ai-ml passes its keyword arguments to every generated service client
(``_ml_client.py``: ``ServiceClient...(credential, ..., **kwargs)``), so the real operations
code runs (entity -> REST model, serialization, ARM ids, polling) and only the bytes on the wire
are answered here, the way Azure Resource Manager answers them for
``Microsoft.MachineLearningServices/workspaces/<ws>/...``:

- every ARM resource is JSON kept in memory by its id (case-insensitive, as ARM ids are): the
  workspace, computes and datastores a test seeds, and whatever the SDK ``PUT``s (data and
  environment versions, code and component versions, batch endpoints and deployments,
  schedules); ``GET`` on a collection lists its children, ``GET`` on an item returns it or 404
  with ARM's error body;
- a ``PUT`` returns what the service computes as well (id, name, type, systemData,
  ``provisioningState``; a batch endpoint's ``scoringUri``);
- batch endpoints and deployments are long-running on the service: their ``PUT`` answers 201
  ``Creating`` with an ``Azure-AsyncOperation`` header, and the SDK's poller reads that
  operation (Succeeded) and then the resource, as against Azure;
- ``POST .../datastores/<name>/listSecrets`` answers what an identity-based datastore has
  (no secrets);
- what the service refuses, it refuses here too: an asset version (data, environment, code,
  component) written again with other content (409), a batch endpoint whose default names a
  deployment that does not exist, a schedule whose job leaves a required input of a registered
  component without a value (400).

Every request is recorded (method, URL, JSON body) so a test can say "no writes". The bearer
token on each request must be for Azure Resource Manager, as ARM requires. A request to another
host, or an action (``POST``) this fake does not model, is a 400 naming the request, never a
silent success.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransport

ARM = "management.azure.com"
PROVIDER = "Microsoft.MachineLearningServices"
WRITES = ("PUT", "POST", "PATCH", "DELETE")
# Resource types whose PUT is asynchronous on the service (ARM's 201 + Azure-AsyncOperation).
LONG_RUNNING = {"batchendpoints", "deployments"}
TYPES = {
    "computes": "computes",
    "datastores": "datastores",
    "data": "data",
    "environments": "environments",
    "codes": "codes",
    "components": "components",
    "batchendpoints": "batchEndpoints",
    "deployments": "batchEndpoints/deployments",
    "schedules": "schedules",
    "versions": "versions",
}


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    body: Any

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


class FakeAzureML(HttpTransport):
    """One workspace's ARM surface in memory; see the module docstring."""

    def __init__(self, subscription: str, resource_group: str, workspace: str, *,
                 location: str = "westeurope"):  # fmt: skip
        self.location = location
        self.workspace_id = (
            f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
            f"/providers/{PROVIDER}/workspaces/{workspace}"
        )
        self.resources: dict[str, dict[str, Any]] = {}
        self.sent: list[Sent] = []
        self.operations: dict[str, str] = {}  # async operation id -> resource id
        self._put(self.workspace_id, {
            "location": location,
            "properties": {
                "workspaceId": str(uuid.uuid4()),
                "discoveryUrl": f"https://{location}.api.azureml.ms/discovery",
                "mlFlowTrackingUri": f"azureml://{location}.api.azureml.ms/mlflow/v1.0"
                                     f"{self.workspace_id}",
                "provisioningState": "Succeeded",
            },
        }, type_="Microsoft.MachineLearningServices/workspaces")  # fmt: skip

    # -- seeding what Terraform creates -----------------------------------------------------

    def add_compute(self, name: str, *, max_nodes: int = 4, kind: str = "AmlCompute") -> None:
        props: dict[str, Any] = {"computeType": kind, "provisioningState": "Succeeded"}
        if kind == "AmlCompute":
            props["properties"] = {
                "vmSize": "STANDARD_DS3_V2",
                "vmPriority": "Dedicated",
                "scaleSettings": {"minNodeCount": 0, "maxNodeCount": max_nodes},
            }
        self._put(f"{self.workspace_id}/computes/{name}",
                  {"location": self.location, "properties": props})  # fmt: skip

    def add_datastore(self, name: str, *, account: str, container: str,
                      default: bool = False) -> None:  # fmt: skip
        self._put(f"{self.workspace_id}/datastores/{name}", {"properties": {
            "datastoreType": "AzureBlob",
            "accountName": account,
            "containerName": container,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "credentials": {"credentialsType": "None"},  # identity-based: no key, no SAS
            "isDefault": default,
            "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
        }})  # fmt: skip

    def remove(self, relative: str) -> None:
        """Delete ``<workspace>/<relative>`` (e.g. "computes/cpu-cluster"), as if never made."""
        del self.resources[f"{self.workspace_id}/{relative}".lower()]

    # -- what a test reads ------------------------------------------------------------------

    def writes(self) -> list[Sent]:
        return [s for s in self.sent if s.method in WRITES and not s.path.endswith("/listSecrets")]

    def items(self, collection: str) -> dict[str, dict[str, Any]]:
        """{name: resource} directly under the workspace's ``collection`` (e.g. "schedules"),
        or under a path below it ("batchEndpoints/batch-score/deployments")."""
        prefix = f"{self.workspace_id}/{collection}/".lower()
        return {
            r["name"]: r
            for key, r in self.resources.items()
            if key.startswith(prefix) and "/" not in key[len(prefix) :]
        }

    def clear(self) -> None:
        self.sent.clear()

    # -- HttpTransport ----------------------------------------------------------------------

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeAzureML:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def sleep(self, duration: float) -> None:
        pass  # the poller's Retry-After waits: nothing to wait for here

    def send(self, request: Any, **kwargs: Any) -> Any:
        body = _json(request)
        self.sent.append(Sent(request.method, request.url, body))
        url = urlsplit(request.url)
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if url.hostname != ARM:
            status, payload = 400, _error("UnknownHost", f"this fake serves {ARM} only: "
                                          f"{request.method} {request.url}")  # fmt: skip
        elif not _audience_ok(token):
            status, payload = (
                401,
                _error(
                    "InvalidAuthenticationToken",
                    "the access token is not for Azure Resource Manager",
                ),
            )
        else:
            status, payload, headers = self._route(request.method, url, body)
            return _response(request, status, payload, headers)
        return _response(request, status, payload, {})

    # -- the service ------------------------------------------------------------------------

    def _route(self, method: str, url: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        path = url.path.rstrip("/")
        query = parse_qs(url.query)
        if path.startswith("/operations/"):
            op = path.rsplit("/", 1)[1]
            if op not in self.operations:
                return 404, _error("NotFound", f"operation {op}"), {}
            return 200, {"id": op, "status": "Succeeded"}, {}
        if path.lower() == self.workspace_id.lower():
            if method == "GET":
                return 200, self.resources[self.workspace_id.lower()], {}
            return 400, _error("NotSupported", f"{method} on the workspace"), {}
        if not path.lower().startswith(self.workspace_id.lower() + "/"):
            return 404, _error("ResourceGroupNotFound", f"no such resource: {path}"), {}
        segments = path[len(self.workspace_id) + 1 :].split("/")
        if method == "POST" and segments[0] == "datastores" and segments[-1] == "listSecrets":
            return 200, {"secretsType": "None"}, {}
        if method == "POST":
            return 400, _error("NotSupported", f"POST {path}"), {}
        key = path.lower()
        if len(segments) % 2 == 1:  # a collection
            if method != "GET":
                return 405, _error("MethodNotAllowed", f"{method} {path}"), {}
            return 200, {"value": self._list(key, segments[-1], query)}, {}
        if method == "GET":
            found = self.resources.get(key)
            if found is None:
                kind = TYPES.get(segments[-2].lower(), segments[-2])
                return 404, _error("ResourceNotFound", f"{kind} {segments[-1]!r} not found"), {}
            return 200, found, {}
        if method == "DELETE":
            existed = self.resources.pop(key, None)
            return (200 if existed else 204), None, {}
        if method in ("PUT", "PATCH"):
            return self._write(method, path, segments, body or {})
        return 405, _error("MethodNotAllowed", f"{method} {path}"), {}

    def _list(self, key: str, collection: str, query: dict[str, list[str]]) -> list[dict]:
        prefix = key + "/"
        found = [r for k, r in sorted(self.resources.items())
                 if k.startswith(prefix) and "/" not in k[len(prefix):]]  # fmt: skip
        if collection.lower() == "datastores" and query.get("isDefault") == ["true"]:
            found = [r for r in found if r["properties"].get("isDefault")]
        if collection.lower() == "schedules":
            view = (query.get("listViewType") or ["EnabledOnly"])[0]
            wanted = {"EnabledOnly": [True], "DisabledOnly": [False]}.get(view, [True, False])
            found = [r for r in found if r["properties"].get("isEnabled", True) in wanted]
        return found

    def _write(self, method: str, path: str, segments: list[str], body: dict) -> tuple:
        key = path.lower()
        existing = self.resources.get(key)
        if method == "PATCH":
            if existing is None:
                return 404, _error("ResourceNotFound", path), {}
            body = _merge(existing, body)
        kind = segments[-2].lower()
        if (
            kind == "versions"
            and existing is not None
            and segments[0] in ("data", "environments", "codes", "components")
        ):
            # Asset versions are immutable on the service: same content is fine, other is not.
            if _asset_view(existing) != _asset_view(body):
                return 409, _error("UserError", f"{segments[0]} {segments[1]} version "
                                   f"{segments[3]} exists with other content"), {}  # fmt: skip
            return 200, existing, {}
        if kind == "batchendpoints":
            default = ((body.get("properties") or {}).get("defaults") or {}).get("deploymentName")
            if default and f"{key}/deployments/{default}".lower() not in self.resources:
                return 400, _error("BadRequest", f"deployment {default!r} does not exist"), {}
        if kind == "schedules":
            unbound = self._unbound_inputs(body)
            if unbound:
                return 400, _error("UserError", f"schedule {segments[-1]}: {unbound}"), {}
        resource = self._put(path, body, type_=self._type(segments))
        props = resource.setdefault("properties", {})
        if kind == "schedules":
            props.setdefault("isEnabled", True)  # the service's default when a PUT omits it
        if kind == "batchendpoints":
            host = f"{segments[-1]}.{self.location}.inference.ml.azure.com"
            props["scoringUri"] = f"https://{host}/jobs"
            props["swaggerUri"] = f"https://{host}/swagger.json"
            props.setdefault("defaults", {})
        if kind in LONG_RUNNING:
            resource["location"] = resource.get("location") or self.location
            op = uuid.uuid4().hex
            self.operations[op] = key
            status_url = f"https://{ARM}/operations/{op}?api-version=2023-10-01"
            props["provisioningState"] = "Succeeded"
            creating = json.loads(json.dumps(resource))
            creating["properties"]["provisioningState"] = (
                "Creating" if existing is None else ("Updating")
            )
            return (201 if existing is None else 200), creating, {
                "Azure-AsyncOperation": status_url, "Retry-After": "0",
            }  # fmt: skip
        props["provisioningState"] = "Succeeded"
        return (200 if existing is not None else 201), resource, {}

    def _unbound_inputs(self, schedule: dict) -> str | None:
        """What the service refuses in a schedule's job: a node running a registered component
        without a value for one of its required inputs (no default, not optional)."""
        job = schedule.get("properties", {}).get("action", {}).get("jobDefinition", {})
        job_inputs = job.get("inputs") or {}
        for node_name, node in (job.get("jobs") or {}).items():
            component = self.resources.get(str(node.get("componentId", "")).lower())
            if component is None:
                continue
            spec = component["properties"].get("componentSpec", {})
            bound = node.get("inputs") or {}
            for name, declared in (spec.get("inputs") or {}).items():
                if declared.get("optional") or "default" in declared:
                    continue
                value = bound.get(name)
                via_parent = isinstance(value, dict) and str(value.get("value", "")).startswith(
                    "${{parent.inputs."
                )
                parent = (
                    str(value.get("value", ""))[len("${{parent.inputs.") : -2] if via_parent else ""
                )
                if value is None or (via_parent and parent not in job_inputs):
                    return f"required input {name!r} of job {node_name!r} is not given"
        return None

    def _type(self, segments: list[str]) -> str:
        kinds = [TYPES.get(s.lower(), s) for s in segments[::2]]
        return f"{PROVIDER}/workspaces/" + "/".join(kinds)

    def _put(self, resource_id: str, body: dict, *, type_: str | None = None) -> dict:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        existing = self.resources.get(resource_id.lower())
        created = (existing or {}).get("systemData", {}).get("createdAt", now)
        resource = {
            **json.loads(json.dumps(body)),
            "id": resource_id,
            "name": resource_id.rsplit("/", 1)[1],
            "type": type_ or f"{PROVIDER}/workspaces",
            "systemData": {
                "createdAt": created, "createdBy": "deployer", "createdByType": "Application",
                "lastModifiedAt": now, "lastModifiedBy": "deployer",
                "lastModifiedByType": "Application",
            },
        }  # fmt: skip
        self.resources[resource_id.lower()] = resource
        return resource


class AzuriteByName(RequestsTransport):
    """Sends what a storage client addresses to ``<account>.blob.core.windows.net`` to Azurite
    (path-style, ``https://127.0.0.1:<port>/<account>``): DNS for the storage account, which
    this machine cannot resolve, is the only thing it stands in for; the bytes, the service's
    checks of the bearer token and its answers are Azurite's.

    The session is the test's, not the transport's: every upload opens and closes a client on
    this one transport, and an owned session would be gone after the first."""

    def __init__(self, azurite_endpoint: str, **kwargs: Any):
        super().__init__(session=requests.Session(), session_owner=False, **kwargs)
        self.target = urlsplit(azurite_endpoint)
        self.sent: list[tuple[str, str]] = []  # (method, URL as addressed)

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent.append((request.method, request.url))
        url = urlsplit(request.url)
        match = re.fullmatch(r"([a-z0-9]+)\.blob\.core\.windows\.net", url.hostname or "")
        if match:
            request.url = urlunsplit(
                (self.target.scheme, self.target.netloc, f"/{match.group(1)}{url.path}",
                 url.query, "")
            )  # fmt: skip
        return super().send(request, **kwargs)


def _json(request: Any) -> Any:
    data = getattr(request, "content", None)
    if data is None:
        data = getattr(request, "data", None) or getattr(request, "body", None)
    if not data:
        return None
    if isinstance(data, bytes):
        data = data.decode()
    try:
        return json.loads(data)
    except (TypeError, ValueError):
        return data


def _audience_ok(token: str) -> bool:
    import base64

    try:
        claims = token.split(".")[1]
        claims += "=" * (-len(claims) % 4)
        aud = json.loads(base64.urlsafe_b64decode(claims))["aud"]
    except (IndexError, KeyError, ValueError):
        return False
    return aud.rstrip("/") == f"https://{ARM}"


def _asset_view(resource: dict) -> Any:
    props = dict(resource.get("properties") or {})
    for computed in ("provisioningState", "isArchived", "isAnonymous", "autoDeleteSetting"):
        props.pop(computed, None)
    return json.dumps(props, sort_keys=True)


def _merge(base: dict, patch: dict) -> dict:
    out = json.loads(json.dumps(base))
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _response(request: Any, status: int, payload: Any, headers: dict[str, str]) -> Any:
    """What azure-core's RequestsTransport returns for this status, body and headers."""
    from azure.core.pipeline._tools import handle_non_stream_rest_response, is_rest
    from azure.core.pipeline.transport import RequestsTransportResponse
    from azure.core.rest._requests_basic import RestRequestsTransportResponse

    raw = requests.Response()
    raw.status_code = status
    raw.reason = requests.status_codes._codes.get(status, ("",))[0].upper()
    raw._content = b"" if payload is None else json.dumps(payload).encode()
    raw._content_consumed = True
    raw.headers.update({"Content-Type": "application/json; charset=utf-8",
                        "x-ms-request-id": str(uuid.uuid4()), **headers})  # fmt: skip
    raw.url = request.url
    if is_rest(request):
        response = RestRequestsTransportResponse(request=request, internal_response=raw)
        handle_non_stream_rest_response(response)
        return response
    return RequestsTransportResponse(request, raw)
