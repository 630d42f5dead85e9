"""Publish behind a stable PipelineEndpoint; a new version only when the fingerprint changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from amlops.backends.base import CREATED, UNCHANGED, UPDATED, Change
from amlops.content import hash_text
from amlops.errors import AmlopsError
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
        if _not_found(exc):
            return None
        raise AmlopsError(f"reading pipeline endpoint {name!r} failed: {_line(exc)}") from None


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
    if endpoint is None:
        if plan:
            return Change("endpoint", name, CREATED, "0", {"fingerprint": fp})
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
    versions = {v.version: v.pipeline for v in endpoint.list_versions()}
    default = endpoint.get_default_version()
    current = versions.get(default)
    if current is not None and current.version == fp:
        return _change(UNCHANGED, endpoint, current, fp)
    earlier = [v for v, p in versions.items() if p.version == fp]
    if earlier:
        # The same pipeline was published before (a revert): point the default back at it.
        version = max(earlier, key=int)
        if plan:
            detail = {"url": endpoint.endpoint, "fingerprint": fp, "reverts": True}
            return Change("endpoint", name, UPDATED, version, detail)
        endpoint.set_default_version(version)
        return _change(UPDATED, endpoint, versions[version], fp, reverts=True)
    if plan:
        next_version = str(max((int(v) for v in versions), default=-1) + 1)
        detail = {"url": endpoint.endpoint, "fingerprint": fp}
        return Change("endpoint", name, UPDATED, next_version, detail)
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


def _not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if getattr(response, "status_code", None) == 404:
        return True
    text = str(exc).lower()
    return any(s in text for s in ("code: 404", "not exist", "not found"))


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
