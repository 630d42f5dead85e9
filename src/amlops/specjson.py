"""A pipeline spec as a JSON document, and the fingerprint that says "this pipeline changed"."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from amlops.content import hash_text, hash_tree
from amlops.spec import DataPathParam, DatasetInput, InputRef, Output, Param, Pipeline, Step


def value_document(value: Any) -> Any:
    """A spec value (argument, input, setting) as plain JSON, references tagged by kind."""
    if isinstance(value, Param):
        return {"param": value.name, "default": value.default}
    if isinstance(value, DataPathParam):
        return {
            "datapath_param": value.name,
            "datastore": value.datastore,
            "path": value.path,
            "mode": value.mode,
            "kind": value.kind,
        }
    if isinstance(value, Output):
        return {"output": value.name}
    if isinstance(value, InputRef):
        return {"input": value.name, "from_output": value.output.name}
    if isinstance(value, DatasetInput):
        return {
            "dataset": value.dataset,
            "version": value.version,
            "name": value.input_name,
            "mode": value.mode,
        }
    if isinstance(value, tuple | list):
        return [value_document(v) for v in value]
    return value


def step_document(step: Step, *, with_source_hash: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(step).__name__}
    for f in fields(step):
        value = getattr(step, f.name)
        doc[f.name] = str(value) if f.name == "source_dir" else value_document(value)
    if with_source_hash:
        doc["source_hash"] = hash_tree(step.source_dir)
    return doc


def pipeline_document(pipeline: Pipeline) -> dict[str, Any]:
    """Everything that defines the pipeline, including each step folder's content hash."""
    return {
        "name": pipeline.name,
        "description": pipeline.description,
        "parameters": [value_document(p) for p in pipeline.parameters],
        "steps": [step_document(s) for s in pipeline.steps],
    }


def document_fingerprint(document: dict[str, Any]) -> str:
    """Fingerprint of a pipeline document, blind to where the repo is checked out."""
    portable = {**document, "steps": [_portable(s) for s in document["steps"]]}
    return hash_text(json.dumps(portable, sort_keys=True))


def _portable(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k != "source_dir"}
