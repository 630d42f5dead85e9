"""Published pipelines on the local workspace: stable endpoints with numbered, frozen versions.

As in Azure ML, a published version is immutable: its step folders are copied when it is
published, so editing the repo afterwards changes nothing an endpoint runs until the next
publish. Versions are the strings "0", "1", ...; the default moves to each new one, and an
earlier version stays addressable for rollback.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from amlops.backends.base import CREATED, Change
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import LocalWorkspace
from amlops.content import snapshot
from amlops.errors import AmlopsError, ConfigError
from amlops.policy import decide_publish
from amlops.spec import Pipeline
from amlops.specjson import document_fingerprint, pipeline_document, pipeline_from_document

SUBMIT_PATH = "/pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/"


def submit_url(base_url: str, name: str) -> str:
    """The REST address that starts a run of the endpoint's default version."""
    return f"{base_url}{SUBMIT_PATH}{name}"


def publish(
    ws: LocalWorkspace, store: Store, pipeline: Pipeline, *, base_url: str, plan: bool
) -> Change:
    """Create the endpoint, move its default to a matching earlier version, or add one."""
    document = pipeline_document(pipeline)
    fingerprint = document_fingerprint(document)
    if plan:
        return _decide(store.db, pipeline.name, fingerprint, base_url)
    with store.transaction() as db:
        change = _decide(db, pipeline.name, fingerprint, base_url)
        if not change.changed:
            return change
        if change.detail.get("reverts"):
            _set_default(db, pipeline.name, change.version)
            return change
        built = db.execute(
            "SELECT version FROM pipelines WHERE name=? AND fingerprint=?",
            (pipeline.name, fingerprint),
        ).fetchone()
        if built is None:
            never = store.latest_pipeline(pipeline.name) is None
            raise ConfigError(
                f"pipeline {pipeline.name!r} "
                + ("is not built yet" if never else "changed since it was last built")
                + ": run scripts/deploy.py --stage build (or all) before --stage publish"
            )
        folder = ws.root / "published" / pipeline.name / change.version
        _freeze(pipeline, folder)
        now = time.time()
        if change.action == CREATED:
            db.execute(
                "INSERT INTO endpoints VALUES (?, ?, ?, ?, ?)",
                (pipeline.name, change.version, pipeline.description, now, now),
            )
        db.execute(
            "INSERT INTO endpoint_versions VALUES (?, ?, ?, ?, ?, ?)",
            (pipeline.name, change.version, built["version"], fingerprint, ws.rel(folder), now),
        )
        _set_default(db, pipeline.name, change.version)
        return change


def _decide(db, name: str, fingerprint: str, base_url: str) -> Change:
    endpoint = db.execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
    versions = None
    if endpoint is not None:
        rows = db.execute("SELECT * FROM endpoint_versions WHERE endpoint=?", (name,))
        versions = {row["version"]: row["fingerprint"] for row in rows}
    default = endpoint["default_version"] if endpoint is not None else None
    return decide_publish(name, fingerprint, versions, default, {"url": submit_url(base_url, name)})


def _set_default(db, name: str, version: str) -> None:
    db.execute(
        "UPDATE endpoints SET default_version=?, updated_at=? WHERE name=?",
        (version, time.time(), name),
    )


def _freeze(pipeline: Pipeline, folder: Path) -> None:
    """Copy each step's snapshot to folder/<step>, replacing leftovers of a failed publish."""
    if folder.exists():
        shutil.rmtree(folder)
    for step in pipeline.steps:
        snapshot(step.source_dir, folder / step.name)


class NotPublished(AmlopsError):
    """No such endpoint or version: the REST service answers 404."""


def published(ws: LocalWorkspace, store: Store, name: str, version: str | None = None):
    """(pipeline, version) of an endpoint: its default version unless one is named."""
    endpoint = store.one("SELECT * FROM endpoints WHERE name=?", (name,))
    if endpoint is None:
        known = ", ".join(r["name"] for r in store.all("SELECT name FROM endpoints ORDER BY name"))
        raise NotPublished(f"no pipeline endpoint {name!r} (endpoints: {known or 'none'})")
    version = endpoint["default_version"] if version is None else version
    row = store.one(
        "SELECT v.*, p.definition FROM endpoint_versions v JOIN pipelines p"
        " ON p.name = v.endpoint AND p.version = v.pipeline_version"
        " WHERE v.endpoint=? AND v.version=?",
        (name, version),
    )
    if row is None:
        raise NotPublished(f"endpoint {name!r} has no version {version!r}")
    document = json.loads(row["definition"])
    frozen = ws.abs(row["snapshot"])
    sources = {step["name"]: frozen / step["name"] for step in document["steps"]}
    return pipeline_from_document(document, sources), version
