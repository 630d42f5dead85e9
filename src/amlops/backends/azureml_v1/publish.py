"""Publish behind a stable PipelineEndpoint; a new version only when the fingerprint changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from amlops.backends.base import CREATED, UNCHANGED, UPDATED, Change
from amlops.backends.sdk_errors import first_line, is_not_found
from amlops.content import hash_text
from amlops.errors import AmlopsError
from amlops.policy import decide_publish
from amlops.spec import Pipeline
from amlops.specjson import document_fingerprint, pipeline_document

# PublishedPipeline.version is free text in v1; it carries the fingerprint so a later deploy
# can tell "same pipeline" without rebuilding the graph.
FINGERPRINT_PREFIX = "amlops-"


def fingerprint(pipeline: Pipeline, bindings: Mapping[str, Any]) -> str:
    """The spec (with step folder hashes) plus what v1's own reuse hash ignores:
    compute, environment versions and the dataset versions the graph pins."""
    spec = document_fingerprint(pipeline_document(pipeline))
    return FINGERPRINT_PREFIX + hash_text(spec, json.dumps(bindings, sort_keys=True))[:20]


def find_endpoint(workspace: Any, name: str, provider: Any, endpoint: str | None) -> Any | None:
    """The PipelineEndpoint called ``name``, or None when there is none yet."""
    from azureml.pipeline.core import PipelineEndpoint

    try:
        return PipelineEndpoint.get(
            workspace, name=name, _workflow_provider=provider, _service_endpoint=endpoint
        )
    except Exception as exc:  # the service raises ErrorResponseException; dry runs Exception
        if is_not_found(exc):
            return None
        raise AmlopsError(f"reading pipeline endpoint {name!r} failed: {first_line(exc)}") from None


def publish_pipeline(
    pipeline: Pipeline,
    fp: str,
    build: Callable[[], Any],
    *,
    workspace: Any,
    provider: Any = None,
    service_endpoint: str | None = None,
    plan: bool,
) -> Change:
    """Create the endpoint, move its default to a matching earlier version, or add one."""
    from azureml.pipeline.core import PipelineEndpoint

    name = pipeline.name
    endpoint = find_endpoint(workspace, name, provider, service_endpoint)
    versions = (
        None if endpoint is None else {v.version: v.pipeline for v in endpoint.list_versions()}
    )
    default = None if endpoint is None else endpoint.get_default_version()
    fingerprints = None if versions is None else {v: p.version for v, p in versions.items()}
    url = {} if endpoint is None else {"url": endpoint.endpoint}
    change = decide_publish(name, fp, fingerprints, default, url)
    if change.action == UNCHANGED:
        assert endpoint is not None and versions is not None
        return _change(UNCHANGED, endpoint, versions[change.version], fp)
    if plan:
        return change
    if endpoint is None:
        published = _publish(build(), name, pipeline.description, fp)
        endpoint = PipelineEndpoint.publish(
            workspace,
            name=name,
            description=pipeline.description or name,
            pipeline=published,
            _workflow_provider=provider,
            _service_endpoint=service_endpoint,
        )
        return _change(CREATED, endpoint, published, fp)
    assert versions is not None
    if change.detail.get("reverts"):
        endpoint.set_default_version(change.version)
        return _change(UPDATED, endpoint, versions[change.version], fp, reverts=True)
    published = _publish(build(), name, pipeline.description, fp)
    endpoint.add_default(published)
    return _change(UPDATED, endpoint, published, fp)


def _publish(aml_pipeline: Any, name: str, description: str, fp: str) -> Any:
    return aml_pipeline.publish(name=name, description=description or name, version=fp)


def _change(action: str, endpoint: Any, published: Any, fp: str, **extra: Any) -> Change:
    return Change(
        "endpoint",
        endpoint.name,
        action,
        endpoint.get_default_version(),
        {
            "url": endpoint.endpoint,
            "endpoint_id": endpoint.id,
            "published_pipeline_id": published.id,
            "fingerprint": fp,
            **extra,
        },
    )
