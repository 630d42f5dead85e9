"""A pipeline spec as a JSON document, and the fingerprint that says "this pipeline changed"."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from amlops.content import hash_text, hash_tree
from amlops.spec import (
    STEP_KINDS,
    DataPathParam,
    DatasetInput,
    EarlyTermination,
    InputRef,
    Output,
    Param,
    Pipeline,
    SearchParam,
    SpecError,
    Step,
)

STEP_TYPES = {cls.__name__: cls for cls in STEP_KINDS}


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
    if isinstance(value, SearchParam):
        return {"search": value.name, "expression": value.expression, "values": list(value.values)}
    if isinstance(value, EarlyTermination):
        doc = {"early_termination": value.policy}
        doc.update({f.name: getattr(value, f.name) for f in fields(value) if f.name != "policy"})
        return doc
    if isinstance(value, tuple | list):
        return [value_document(v) for v in value]
    return value


def step_document(step: Step, *, with_source_hash: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": step.kind}
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


def value_from_document(doc: Any) -> Any:
    """The inverse of value_document: plain JSON back to spec values."""
    if isinstance(doc, list):
        return tuple(value_from_document(v) for v in doc)
    if not isinstance(doc, dict):
        return doc
    if "param" in doc:
        return Param(doc["param"], doc["default"])
    if "datapath_param" in doc:
        return DataPathParam(
            doc["datapath_param"], doc["datastore"], doc["path"], doc["mode"], doc["kind"]
        )
    if "output" in doc:
        return Output(doc["output"])
    if "from_output" in doc:
        return InputRef(Output(doc["from_output"]), doc["input"])
    if "search" in doc:
        return SearchParam(doc["search"], doc["expression"], tuple(doc["values"]))
    if "early_termination" in doc:
        rest = {k: v for k, v in doc.items() if k != "early_termination"}
        return EarlyTermination(doc["early_termination"], **rest)
    if "dataset" in doc:
        unnamed = DatasetInput(doc["dataset"], doc["version"], None, doc["mode"])
        if unnamed.input_name == doc["name"]:
            return unnamed
        return DatasetInput(doc["dataset"], doc["version"], doc["name"], doc["mode"])
    raise ValueError(f"not a spec value document: {doc!r}")


def pipeline_from_document(document: dict[str, Any], source_dirs: dict[str, Path]) -> Pipeline:
    """Rebuild the Pipeline a document describes, each step's source in ``source_dirs``."""
    steps = []
    for doc in document["steps"]:
        cls = STEP_TYPES.get(doc["type"])
        if cls is None:
            raise SpecError(
                f"pipeline {document['name']!r}: step {doc['name']!r} is a {doc['type']}, "
                f"not a step kind this amlops knows ({', '.join(STEP_TYPES)})"
            )
        kwargs = {f.name: value_from_document(doc[f.name]) for f in fields(cls) if f.name in doc}
        kwargs["source_dir"] = source_dirs[doc["name"]]
        steps.append(cls(**kwargs))
    return Pipeline(document["name"], tuple(steps), document["description"])
