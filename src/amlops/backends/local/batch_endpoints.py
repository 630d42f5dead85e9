"""The local service as Azure ML v2 clients see it: each published pipeline is also the batch
endpoint the v2 backend would create for it (the same name: amlops.backends.azureml_v2.naming),
so a client written with azure-ai-ml (``MLClient.batch_endpoints.invoke``) or against the
documented REST call is developed offline and carries over by changing host and token.

An invocation takes the body the service takes (``{"properties": {"InputData": {name:
{"JobInputType": "Literal", "Value": ...} | {"JobInputType": "UriFolder", "Uri":
"azureml://datastores/<ds>/paths/<path>"}}}}``); keys are read case-insensitively, as the service
does, because azure-ai-ml sends them camelCase and the REST docs write them PascalCase. The inputs
become the same parameter values a v1-shaped submit gives, so they are checked by the same rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from amlops.backends.azureml_v2.naming import deployment_version, endpoint_name
from amlops.backends.local.endpoints import NotPublished
from amlops.backends.local.store import Store
from amlops.backends.local.views import iso
from amlops.errors import AmlopsError
from amlops.spec import DataPathParam, Pipeline

# azure-ai-ml's resource manager paths (one workspace answers for any subscription and group).
ARM = (
    "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{workspace}"
)
JOBS = "/batchEndpoints/{name}/jobs"  # the scoring URI's path: Azure gives each endpoint a host
DEPLOYMENT_HEADER = "azureml-model-deployment"  # azure-ai-ml's EndpointInvokeFields
LITERAL = "literal"
DATA_TYPES = {"urifolder", "urifile", "mltable"}
DATASTORE_URI = re.compile(r"^azureml://datastores/(?P<datastore>[^/]+)/paths/(?P<path>.+)$")
# What a v2 invocation may carry that means something here; the rest is refused by name.
INVOCATION_KEYS = {"inputdata", "properties"}


class BadInvocation(AmlopsError):
    """An invocation body the local service cannot run: the answer is 400, naming the key."""


@dataclass(frozen=True)
class Invocation:
    parameters: dict[str, Any]  # as a v1-shaped submit gives them: datastore paths as ds/path
    data_inputs: frozenset[str]  # the inputs given as Uri (data), not Literal
    experiment: str | None


def batch_endpoint_names(store: Store) -> dict[str, str]:
    """Every batch endpoint name -> its local endpoint (a pipeline's name)."""
    names = [r["name"] for r in store.all("SELECT name FROM endpoints ORDER BY name")]
    known = {}
    for local in names:
        try:
            known[endpoint_name(local)] = local
        except AmlopsError:  # a pipeline name v2 cannot carry has no batch endpoint
            continue
    return known


def local_endpoint(store: Store, name: str) -> str:
    """The local endpoint (a pipeline's name) whose v2 batch endpoint is ``name``."""
    known = batch_endpoint_names(store)
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise NotPublished(f"no batch endpoint {name!r} (batch endpoints: {listed})")
    return known[name]


def version_of(deployment: str | None) -> str | None:
    """The endpoint version a deployment header names (None: the default)."""
    if deployment is None:
        return None
    version = deployment_version(deployment)
    if version is None:
        raise NotPublished(
            f"{DEPLOYMENT_HEADER}: {deployment!r} is not a deployment of this endpoint "
            "(they are named version-<N>)"
        )
    return version


def read_invocation(body: dict[str, Any]) -> Invocation:
    """The parameter values and experiment an invocation body asks for."""
    outer = _lower(body, "")
    if set(outer) - {"properties"}:
        key = sorted(set(outer) - {"properties"})[0]
        raise BadInvocation(
            f'{key}: unknown key (the body is {{"properties": {{"InputData": ...}}}})'
        )
    props = outer.get("properties", {})
    if not isinstance(props, dict):
        raise BadInvocation("properties: must be an object")
    props = _lower(props, "properties.")
    unknown = sorted(set(props) - INVOCATION_KEYS)
    if unknown:
        raise BadInvocation(
            f"properties.{unknown[0]}: not taken by the local service (it takes InputData, and "
            "properties.experimentName; outputs go where the pipeline writes them)"
        )
    inputs = props.get("inputdata") or {}
    if not isinstance(inputs, dict):
        raise BadInvocation("properties.InputData: must be an object of name: input")
    parameters = {name: _value(name, given) for name, given in inputs.items()}
    data = frozenset(n for n, given in inputs.items() if _kind(given) in DATA_TYPES)
    extra = props.get("properties") or {}
    if not isinstance(extra, dict):
        raise BadInvocation("properties.properties: must be an object")
    experiment = _lower(extra, "properties.properties.").get("experimentname")
    return Invocation(parameters, data, experiment)


def check_kinds(pipeline: Pipeline, invocation: Invocation) -> None:
    """A DataPathParam takes a Uri input, a Param a Literal, as the endpoint's typed inputs do
    on Azure; an unknown name is left to the submit's own check."""
    for p in pipeline.parameters:
        if p.name not in invocation.parameters:
            continue
        if isinstance(p, DataPathParam) and p.name not in invocation.data_inputs:
            raise BadInvocation(
                f'InputData.{p.name}: a data input: use {{"JobInputType": "UriFolder", '
                '"Uri": "azureml://datastores/<datastore>/paths/<path>"}'
            )
        if not isinstance(p, DataPathParam) and p.name in invocation.data_inputs:
            raise BadInvocation(
                f'InputData.{p.name}: a literal input: use {{"JobInputType": "Literal", '
                '"Value": ...}'
            )


def _kind(given: Any) -> str:
    return str(_lower(given, "").get("jobinputtype", "")).lower() if isinstance(given, dict) else ""


def _value(name: str, given: Any) -> Any:
    key = f"InputData.{name}"
    if not isinstance(given, dict):
        raise BadInvocation(
            f'{key}: use {{"JobInputType": "Literal", "Value": ...}} or a Uri input'
        )
    kind = _kind(given)
    given = _lower(given, key + ".")
    if kind == LITERAL:
        value = given.get("value")
        if not isinstance(value, str | int | float | bool):
            raise BadInvocation(f"{key}.Value: must be a string, number or boolean")
        return value
    if kind in DATA_TYPES:
        uri = given.get("uri")
        match = DATASTORE_URI.match(uri) if isinstance(uri, str) else None
        if match is None:
            raise BadInvocation(
                f"{key}.Uri: {uri!r} must be azureml://datastores/<datastore>/paths/<path> "
                "(the local service reads datastore paths, not data assets or URLs)"
            )
        return f"{match['datastore']}/{match['path'].strip('/')}"
    raise BadInvocation(
        f"{key}.JobInputType: {given.get('jobinputtype')!r} must be Literal, UriFolder, UriFile "
        "or MLTable"
    )


def _lower(mapping: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key.lower() in out:
            raise BadInvocation(f"{where}{key}: given twice (keys are not case-sensitive)")
        out[key.lower()] = value
    return out


# --- documents ------------------------------------------------------------------------------------


def endpoint_document(store: Store, local: str, base_url: str, arm_path: str) -> dict[str, Any]:
    """The batch endpoint as the resource manager describes it (what azure-ai-ml reads)."""
    row = store.one("SELECT * FROM endpoints WHERE name=?", (local,))
    name = endpoint_name(local)
    return {
        "id": arm_path,
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
        "location": "local",
        "properties": {
            "authMode": "AADToken",
            "description": row["description"] or local,
            "scoringUri": base_url + JOBS.format(name=name),
            "defaults": {"deploymentName": f"version-{row['default_version']}"},
            "provisioningState": "Succeeded",
        },
    }


def deployment_documents(store: Store, local: str, arm_path: str) -> dict[str, Any]:
    """The endpoint's versions as its deployments, one page."""
    rows = store.all(
        "SELECT version FROM endpoint_versions WHERE endpoint=? ORDER BY created_at", (local,)
    )
    return {
        "value": [
            {
                "id": f"{arm_path}/deployments/version-{r['version']}",
                "name": f"version-{r['version']}",
                "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments",
                "location": "local",
                "properties": {
                    "deploymentConfiguration": {"deploymentConfigurationType": "PipelineComponent"},
                    "provisioningState": "Succeeded",
                },
            }
            for r in rows
        ]
    }


def job_document(row, base_url: str, run_url: str) -> dict[str, Any]:
    """A run as a v2 pipeline job: what an invocation answers and GET shows."""
    origin = json.loads(row["origin"] or "{}")
    name = endpoint_name(origin.get("endpoint") or row["pipeline"])
    parameters = json.loads(row["parameters"])
    return {
        "id": f"{base_url}{JOBS.format(name=name)}/{row['run_id']}",
        "name": row["run_id"],
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "jobType": "Pipeline",
            # The local statuses are all v2 JobStatus values (Queued, Running, Completed, ...).
            "status": row["status"],
            "experimentName": origin.get("experiment") or row["pipeline"],
            "displayName": row["run_id"],
            "description": origin.get("description"),
            "inputs": {
                k: {"jobInputType": "literal", "value": str(v)} for k, v in parameters.items()
            },
            "properties": {
                "amlops.batchEndpoint": name,
                "amlops.deployment": f"version-{origin.get('version')}",
                "amlops.runUrl": run_url,
            },
            "creationContext": {"createdAt": iso(row["created_at"])},
            "startTime": iso(row["start_time"]),
            "endTime": iso(row["end_time"]),
            "error": row["error"],
        },
    }
