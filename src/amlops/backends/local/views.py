"""What the REST service and its web page show, read from a local workspace's store.

A run is one document for every answer about it (POST's and GET's alike), with Azure ML v1's
field names (``Id``, ``Status.StatusCode``, ``RunHistoryExperimentName``,
``ParameterAssignments``, ...) and the local step runs added as ``StepRuns``. The page's own
views (the overview, a run's graph, a step's detail and logs) are here too.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amlops.backends.local.store import Store
from amlops.backends.local.workspace import LocalWorkspace
from amlops.errors import ConfigError

API = "/pipelines/v1.0"
FINISHED = ("Completed", "Failed", "Canceled")
LOG_STREAMS = ("stdout", "stderr")
LOG_CHUNK = 256 * 1024
OUTPUT_FILES_SHOWN = 50


class NotFound(ConfigError):
    """An unknown run or step: the service answers 404."""


def iso(ts: float | None) -> str | None:
    """A time as Azure ML writes it: ISO 8601 in UTC."""
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) if start and end else None


# --- runs ----------------------------------------------------------------------------------------


def run_row(store: Store, run_id: str):
    row = store.one("SELECT * FROM runs WHERE run_id=?", (run_id,))
    if row is None:
        raise NotFound(
            f"run {run_id!r} not found (see: amlops runs list, or GET {API}/PipelineRuns)"
        )
    return row


def run_document(store: Store, ws: LocalWorkspace, row, base_url: str) -> dict[str, Any]:
    """A run as POST answers it, GET shows it and ``amlops runs show`` prints it."""
    origin = json.loads(row["origin"] or '{"type": "SDK"}')
    steps = store.all("SELECT * FROM step_runs WHERE run_id=? ORDER BY seq", (row["run_id"],))
    tags = {"run_type": origin["type"]}
    tags.update({k: str(origin[k]) for k in ("endpoint", "version", "schedule") if k in origin})
    return {
        "Id": row["run_id"],
        "Description": origin.get("description"),
        "Status": {
            "StatusCode": row["status"],
            "StatusDetail": row["error"],
            "CreationTime": iso(row["created_at"]),
            "StartTime": iso(row["start_time"]),
            "EndTime": iso(row["end_time"]),
        },
        # Runs deploy.py starts are recorded under the pipeline's name, as MLflow runs are.
        "RunHistoryExperimentName": origin.get("experiment") or row["pipeline"],
        "PipelineName": row["pipeline"],
        "PipelineEndpointName": origin.get("endpoint"),
        "PipelineVersion": origin.get("version"),
        # The built version (deploy's build stage) it ran; None for a pipeline never built.
        "PipelineBuildVersion": row["pipeline_version"],
        "ParameterAssignments": json.loads(row["parameters"]),
        "RunType": origin["type"],
        "ScheduleId": origin.get("schedule_id"),
        "TotalRunSteps": len(steps),
        "DurationSeconds": _duration(row["start_time"], row["end_time"]),
        "RunUrl": f"{base_url}{API}/PipelineRuns/{row['run_id']}",
        "tags": tags,
        "StepRuns": [_step_document(ws, s) for s in steps],
    }


def _step_document(ws: LocalWorkspace, s) -> dict[str, Any]:
    return {
        "Name": s["step"],
        "StatusCode": s["status"],
        "ReusedFrom": s["reused_from"],
        "ExitCode": s["exit_code"],
        "StartTime": iso(s["start_time"]),
        "EndTime": iso(s["end_time"]),
        "DurationSeconds": _duration(s["start_time"], s["end_time"]),
        "Outputs": {k: str(ws.abs(v)) for k, v in json.loads(s["outputs"]).items()},
        "LogFolder": str(ws.abs(s["folder"])) if s["folder"] else None,
        "Summary": json.loads(s["summary"]) if s["summary"] else None,
        "Why": json.loads(s["why"]) if s["why"] else [],  # why it ran, or what it reused
    }


def run_documents(
    store: Store, ws: LocalWorkspace, base_url: str, *, limit: int = 50, pipeline: str | None = None
) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM runs", ()
    if pipeline:
        sql, args = sql + " WHERE pipeline=?", (pipeline,)
    rows = store.all(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
    return [run_document(store, ws, row, base_url) for row in rows]


# --- the page's overview -------------------------------------------------------------------------


def overview(store: Store, ws: LocalWorkspace, base_url: str, now: float) -> dict[str, Any]:
    """Endpoints with their versions, schedules with their next fire time, the latest runs."""
    from amlops.backends.local.endpoints import submit_url

    endpoints = []
    for row in store.all("SELECT * FROM endpoints ORDER BY name"):
        versions = store.all(
            "SELECT * FROM endpoint_versions WHERE endpoint=? ORDER BY CAST(version AS INTEGER)",
            (row["name"],),
        )
        endpoints.append(
            {
                "name": row["name"],
                "description": row["description"],
                "default_version": row["default_version"],
                "url": submit_url(base_url, row["name"]),
                "versions": [
                    {
                        "version": v["version"],
                        "pipeline_version": v["pipeline_version"],
                        "published": iso(v["created_at"]),
                    }
                    for v in versions
                ],
            }
        )
    schedules = [
        _schedule(row, now)
        for row in store.all("SELECT * FROM schedules ORDER BY status, name, created_at")
    ]
    runs = []
    for row in store.all("SELECT * FROM runs ORDER BY created_at DESC LIMIT 100"):
        origin = json.loads(row["origin"] or '{"type": "SDK"}')
        counts = store.one(
            "SELECT COUNT(*) AS steps, COUNT(reused_from) AS reused FROM step_runs WHERE run_id=?",
            (row["run_id"],),
        )
        runs.append(
            {
                "id": row["run_id"],
                "pipeline": row["pipeline"],
                "status": row["status"],
                "source": origin.get("schedule") or origin["type"],
                "version": origin.get("version"),
                "created": iso(row["created_at"]),
                "started": iso(row["start_time"]),
                "duration_s": _duration(row["start_time"], row["end_time"] or now)
                if row["start_time"]
                else None,
                "steps": counts["steps"],
                "reused": counts["reused"],
            }
        )
    return {"now": iso(now), "endpoints": endpoints, "schedules": schedules, "runs": runs}


def _schedule(row, now: float) -> dict[str, Any]:
    from amlops.backends.local.schedules import next_fire_time, recurrence_of
    from amlops.recurrence import describe

    definition = json.loads(row["definition"])
    rec, trig = recurrence_of(row), definition["datastore_trigger"]
    next_time = iso(next_fire_time(row, now))
    return {
        "name": row["name"],
        "pipeline": row["endpoint"],
        "status": row["status"],
        "when": describe(rec) if rec else f"new files in {trig['datastore']}/{trig['path']}",
        "next_fire": next_time,
        "last_fired": iso(row["last_fired"]),
        "last_run_id": row["last_run_id"],
        "parameters": definition["parameters"],
    }


# --- a run's graph -------------------------------------------------------------------------------


def _definition(store: Store, row) -> dict[str, Any] | None:
    """The pipeline document a run ran: the built version it recorded when it started."""
    if row["pipeline_version"] is None:
        return None  # a pipeline run without being built (a test's, a notebook's)
    found = store.one(
        "SELECT definition FROM pipelines WHERE name=? AND version=?",
        (row["pipeline"], row["pipeline_version"]),
    )
    return json.loads(found["definition"]) if found else None


def graph(store: Store, ws: LocalWorkspace, run_id: str) -> dict[str, Any]:
    """The run's pipeline as nodes (steps, and the data they start from) and edges (data),
    each node with its layer (longest path from a source) and row, ready to draw."""
    from amlops.spec import DataPathParam, DatasetInput, InputRef
    from amlops.specjson import pipeline_from_document

    row = run_row(store, run_id)
    steps = {s["step"]: s for s in store.all("SELECT * FROM step_runs WHERE run_id=?", (run_id,))}
    document = _definition(store, row)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    pipeline = None
    if document is not None and {s["name"] for s in document["steps"]} == set(steps):
        pipeline = pipeline_from_document(document, {name: Path(".") for name in steps})
    values = json.loads(row["parameters"])
    ordered = pipeline.ordered_steps() if pipeline else []
    for step in ordered:
        for item in step.all_inputs():
            if isinstance(item, InputRef):
                producer = pipeline.producer_of(item.output)  # type: ignore[union-attr]
                edges.append({"from": f"step:{producer.name}", "to": f"step:{step.name}",
                              "label": item.output.name})  # fmt: skip
                continue
            if isinstance(item, DatasetInput):
                node_id = f"dataset:{item.dataset}:{item.version}"
                label, detail = item.dataset, f"dataset, version {item.version}"
            elif isinstance(item, DataPathParam):
                node_id = f"datapath:{item.name}"
                label, detail = item.name, f"data path {values.get(item.name, '')}"
            else:
                continue
            nodes.setdefault(node_id, {"id": node_id, "kind": "data", "label": label,
                                       "detail": detail})  # fmt: skip
            edges.append({"from": node_id, "to": f"step:{step.name}", "label": item.name
                          if isinstance(item, DataPathParam) else item.input_name})  # fmt: skip
    names = [s.name for s in ordered] or sorted(steps, key=lambda n: steps[n]["seq"])
    kinds = {s.name: s.kind for s in ordered}
    for name in names:
        s = steps[name]
        nodes[f"step:{name}"] = {
            "id": f"step:{name}",
            "kind": "step",
            "label": name,
            "detail": kinds.get(name, "step"),
            "status": s["status"],
            "reused_from": s["reused_from"],
            "duration_s": _duration(s["start_time"], s["end_time"]),
        }
    # Layers: data at 0, each step one right of the furthest node it reads from.
    layer: dict[str, int] = {n: 0 for n in nodes if nodes[n]["kind"] == "data"}
    for name in names:
        node_id = f"step:{name}"
        sources = [e["from"] for e in edges if e["to"] == node_id]
        layer[node_id] = 1 + max((layer[s] for s in sources), default=-1)
    rows: dict[int, int] = {}
    for node_id, node in nodes.items():
        node["layer"] = layer[node_id]
        node["row"] = rows.get(layer[node_id], 0)
        rows[layer[node_id]] = node["row"] + 1
    return {
        "run_id": run_id,
        "pipeline": row["pipeline"],
        "status": row["status"],
        "nodes": list(nodes.values()),
        "edges": edges,
        "complete": pipeline is not None,  # False: the definition was not found, no edges
    }


# --- one step ------------------------------------------------------------------------------------


def _step_row(store: Store, run_id: str, step: str):
    run_row(store, run_id)
    row = store.one("SELECT * FROM step_runs WHERE run_id=? AND step=?", (run_id, step))
    if row is None:
        raise NotFound(f"run {run_id!r} has no step {step!r}")
    return row


def log_folder(store: Store, ws: LocalWorkspace, row) -> tuple[Path | None, str | None]:
    """Where the step's logs are: its own folder, or the one of the step run it reused."""
    if row["folder"]:
        return ws.abs(row["folder"]), None
    if row["reused_from"]:
        run_id, _, step = row["reused_from"].partition("/")
        original = store.one(
            "SELECT folder FROM step_runs WHERE run_id=? AND step=?", (run_id, step)
        )
        if original is not None and original["folder"]:
            return ws.abs(original["folder"]), row["reused_from"]
    return None, None


def step_detail(store: Store, ws: LocalWorkspace, run_id: str, step: str) -> dict[str, Any]:
    """A step run: status, reuse, outputs (with the files in them), its command, log sizes."""
    row = _step_row(store, run_id, step)
    folder, logs_from = log_folder(store, ws, row)
    command = None
    if folder is not None and (folder / "command.json").is_file():
        argv = json.loads((folder / "command.json").read_text())
        command = {"argv": argv, "line": shlex.join(str(a) for a in argv)}
    outputs = {}
    for name, rel in json.loads(row["outputs"]).items():
        path = ws.abs(rel)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        outputs[name] = {
            "path": str(path),
            "files": [
                {"name": p.relative_to(path).as_posix(), "bytes": p.stat().st_size}
                for p in files[:OUTPUT_FILES_SHOWN]
            ],
            "more_files": max(0, len(files) - OUTPUT_FILES_SHOWN),
        }
    return {
        "run_id": run_id,
        "name": step,
        "status": row["status"],
        "reused_from": row["reused_from"],
        "exit_code": row["exit_code"],
        "started": iso(row["start_time"]),
        "duration_s": _duration(row["start_time"], row["end_time"]),
        "folder": str(folder) if folder else None,
        "logs_from": logs_from,
        "logs": {
            s: (folder / f"{s}.txt").stat().st_size
            if folder and (folder / f"{s}.txt").is_file()
            else None
            for s in LOG_STREAMS
        },
        "command": command,
        "outputs": outputs,
        "summary": json.loads(row["summary"]) if row["summary"] else None,
        "why": json.loads(row["why"]) if row["why"] else [],  # why it ran, or what it reused
    }


def log_chunk(
    store: Store, ws: LocalWorkspace, run_id: str, step: str, stream: str, offset: int
) -> dict[str, Any]:
    """Up to LOG_CHUNK bytes of a step's stdout or stderr from ``offset``: poll with the
    ``offset`` answered until ``final`` (the step has finished and all of it was read)."""
    if stream not in LOG_STREAMS:
        raise NotFound(f"no log {stream!r} (logs: {', '.join(LOG_STREAMS)})")
    row = _step_row(store, run_id, step)
    folder, _ = log_folder(store, ws, row)
    finished = row["status"] in FINISHED or row["reused_from"] is not None
    path = folder / f"{stream}.txt" if folder else None
    if path is None or not path.is_file():
        return {"text": "", "offset": 0, "size": 0, "final": finished}
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        offset = min(max(offset, 0), size)
        f.seek(offset)
        data = f.read(LOG_CHUNK)
    text, used = _decode(data)
    end = offset + used
    return {"text": text, "offset": end, "size": size, "final": finished and end >= size}


def _decode(data: bytes) -> tuple[str, int]:
    """UTF-8 text of ``data`` and how many bytes of it that is: a character cut in two at the
    end of a chunk waits for the next one."""
    try:
        return data.decode(), len(data)
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return data[: exc.start].decode(errors="replace"), exc.start
        return data.decode(errors="replace"), len(data)
