"""Read-only queries over a local workspace: ``amlops <noun> list|show`` and the REST GETs."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlops.backends.local import views
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import LocalWorkspace
from amlops.errors import ConfigError

Row = dict[str, Any]


@dataclass
class WorkspaceReader:
    """One read handle on a workspace. ``shared`` lets threads take turns on it (the REST
    server's request threads), instead of each opening the database anew."""

    ws: LocalWorkspace
    store: Store
    service_url: str
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, root: Path, service_url: str, *, shared: bool = False) -> WorkspaceReader:
        ws = LocalWorkspace(root)
        return cls(ws, Store(ws.db_path, shared=shared), service_url)

    def query(self, noun: str, verb: str, args: Namespace) -> Any:
        with self._lock:
            return query(self, noun, verb, args)

    def models(self) -> list[dict[str, Any]]:
        from amlops.backends.local.models import registered_models

        return registered_models(self.ws)

    def close(self) -> None:
        self.store.close()


def query(backend: WorkspaceReader, noun: str, verb: str, args: Namespace) -> Any:
    if noun == "models":
        return _models(backend, verb, args)
    if noun == "runs":
        return _runs(backend, verb, args)
    if noun == "pipelines":
        return _pipelines(backend, verb, args)
    if noun == "endpoints":
        return _endpoints(backend, verb, args)
    if noun == "schedules":
        return _schedules(backend, verb, args)
    return _assets(backend, noun.rstrip("s"), verb, args)


def _runs(backend: WorkspaceReader, verb: str, args: Namespace) -> Any:
    store = backend.store
    if verb == "list":
        sql = "SELECT * FROM runs"
        params: tuple = ()
        if args.pipeline:
            sql += " WHERE pipeline=?"
            params = (args.pipeline,)
        rows = store.all(sql + " ORDER BY created_at DESC LIMIT ?", (*params, args.limit))
        out = []
        for r in rows:
            steps = store.all("SELECT reused_from FROM step_runs WHERE run_id=?", (r["run_id"],))
            out.append(
                {
                    "run_id": r["run_id"],
                    "pipeline": r["pipeline"],
                    "status": r["status"],
                    "started": _when(r["start_time"]),
                    "duration_s": _duration(r["start_time"], r["end_time"]),
                    "steps": len(steps),
                    "reused": sum(s["reused_from"] is not None for s in steps),
                    "source": _source(r["origin"]),
                }
            )
        return out
    # One document for a run, the REST service's: `runs show --json` prints what GET answers.
    return views.run_document(
        store, backend.ws, views.run_row(store, args.name), backend.service_url
    )


SDK_ORIGIN = '{"type": "SDK"}'


def _source(origin: str | None) -> str:
    """Who started a run: SDK (deploy.py), HTTP (a REST call) or the schedule's name."""
    found = json.loads(origin or SDK_ORIGIN)
    return found.get("schedule") or found["type"]


def _assets(backend: WorkspaceReader, kind: str, verb: str, args: Namespace) -> Any:
    store = backend.store
    if verb == "list":
        rows = store.all(
            "SELECT name, MAX(version) AS latest, COUNT(*) AS versions FROM assets "
            "WHERE kind=? GROUP BY name ORDER BY name",
            (kind,),
        )
        return [dict(r) for r in rows]
    version = args.version
    row = (
        store.latest_asset(kind, args.name)
        if version in (None, "latest")
        else store.asset(kind, args.name, _int(version, "--version"))
    )
    if row is None:
        raise ConfigError(f"{kind} {args.name!r} version {version or 'latest'} not found")
    return {
        "name": row["name"],
        "version": row["version"],
        "content_hash": row["content_hash"],
        "path": str(backend.ws.abs(row["path"])),
        "registered": _when(row["created_at"]),
        **json.loads(row["properties"]),
    }


def _pipelines(backend: WorkspaceReader, verb: str, args: Namespace) -> Any:
    store = backend.store
    if verb == "list":
        rows = store.all(
            "SELECT name, MAX(version) AS latest, COUNT(*) AS versions FROM pipelines "
            "GROUP BY name ORDER BY name"
        )
        return [dict(r) for r in rows]
    sql, params = "SELECT * FROM pipelines WHERE name=?", (args.name,)
    if args.version not in (None, "latest"):
        sql, params = sql + " AND version=?", (args.name, _int(args.version, "--version"))
    row = store.one(sql + " ORDER BY version DESC LIMIT 1", params)
    if row is None:
        raise ConfigError(
            f"pipeline {args.name!r} not built (run: scripts/deploy.py --stage build)"
        )
    return {"name": row["name"], "version": row["version"], **json.loads(row["definition"])}


def _endpoints(backend: WorkspaceReader, verb: str, args: Namespace) -> Any:
    from amlops.backends.local.endpoints import NotPublished, submit_url

    store = backend.store
    rows = store.all(
        "SELECT * FROM endpoints" + ("" if verb == "list" else " WHERE name=?"),
        () if verb == "list" else (args.name,),
    )
    if verb == "show" and not rows:
        raise NotPublished(f"endpoint {args.name!r} not published (run: scripts/deploy.py)")
    found = []
    for row in rows:
        versions = store.all(
            "SELECT version, pipeline_version, created_at FROM endpoint_versions"
            " WHERE endpoint=? ORDER BY CAST(version AS INTEGER)",
            (row["name"],),
        )
        entry = {
            "name": row["name"],
            "default_version": row["default_version"],
            "versions": len(versions),
            "url": submit_url(backend.service_url, row["name"]),
        }
        if verb == "show":
            entry["description"] = row["description"]
            entry["versions"] = [
                {
                    "version": v["version"],
                    "pipeline_version": v["pipeline_version"],
                    "published": _when(v["created_at"]),
                }
                for v in versions
            ]
        found.append(entry)
    return found if verb == "list" else found[0]


def _schedules(backend: WorkspaceReader, verb: str, args: Namespace) -> Any:
    from amlops.backends.local.schedules import next_fire_time, recurrence_of
    from amlops.recurrence import describe

    store = backend.store
    now = time.time()
    if verb == "list":
        rows = store.all("SELECT * FROM schedules ORDER BY name, status, created_at")
    else:
        rows = store.all("SELECT * FROM schedules WHERE name=? ORDER BY status", (args.name,))
        if not rows:
            raise ConfigError(f"schedule {args.name!r} not found (see: amlops schedules list)")
    found = []
    for row in rows:
        definition = json.loads(row["definition"])
        rec, trig = definition["recurrence"], definition["datastore_trigger"]
        entry = {
            "name": row["name"],
            "id": row["id"],
            "pipeline": row["endpoint"],
            "status": row["status"],
            "when": (
                describe(recurrence_of(row))
                if rec
                else f"new files in {trig['datastore']}/{trig['path']}"
            ),
            "next_fire": _when(next_fire_time(row, now)),
            "last_fired": _when(row["last_fired"]),
            "last_run_id": row["last_run_id"],
        }
        if verb == "show":
            entry.update(definition)
        found.append(entry)
    return found if verb == "list" else found[0]


def _models(backend: WorkspaceReader, verb: str, args: Namespace) -> Any:
    models = backend.models()
    if verb == "list":
        return [
            {"name": m["name"], "version": m["version"], "aliases": ",".join(m["aliases"])}
            for m in models
        ]
    found = [m for m in models if m["name"] == args.name]
    if args.version not in (None, "latest"):
        found = [m for m in found if m["version"] == args.version]
    if not found:
        raise ConfigError(f"model {args.name!r} version {args.version or 'latest'} not found")
    return found[0]


def mlflow_ui_command(backend: WorkspaceReader, host: str, port: int) -> list[str]:
    mlflow = shutil.which("mlflow", path=str(sys.prefix) + "/bin") or shutil.which("mlflow")
    if mlflow is None:
        raise ConfigError("mlflow is not installed in this environment: run 'make deploy' first")
    return [
        mlflow, "ui", "--backend-store-uri", backend.ws.mlflow_uri,
        "--default-artifact-root", backend.ws.mlflow_artifacts.as_uri(),
        "--host", host, "--port", str(port),
    ]  # fmt: skip


def render_table(rows: list[Row]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def render(noun: str, verb: str, rows: Any) -> str:
    """What ``amlops <noun> <verb>`` prints without --json."""
    if verb == "list":
        return render_table(rows)
    if noun == "runs":
        return render_run(rows)
    return json.dumps(rows, indent=2, default=str)


def render_run(doc: Row) -> str:
    """A run document (views.run_document) for people: status, parameters, and each step
    with why it ran or what it reused, its outputs and its logs."""
    status = doc["Status"]
    head = f"run {doc['Id']}: {status['StatusCode']}"
    if doc["DurationSeconds"] is not None:
        head += f" in {doc['DurationSeconds']} s"
    source = (
        doc["RunType"]
        if doc["RunType"] != "Schedule"
        else f"schedule {doc['tags'].get('schedule')}"
    )
    lines = [
        head,
        f"  pipeline    {doc['PipelineName']}"
        + (f" (build v{doc['PipelineBuildVersion']})" if doc["PipelineBuildVersion"] else "")
        + (f", endpoint version {doc['PipelineVersion']}" if doc["PipelineVersion"] else ""),
    ]
    lines.append(f"  started     {status['StartTime'] or '-'} by {source}")
    lines.append(f"  experiment  {doc['RunHistoryExperimentName']}")
    if status["StatusDetail"]:
        lines.append(f"  error       {status['StatusDetail']}")
    params = doc["ParameterAssignments"]
    if params:
        lines.append("  parameters  " + ", ".join(f"{k}={v}" for k, v in params.items()))
    lines.append("steps:")
    for step in doc["StepRuns"]:
        took = f" in {step['DurationSeconds']} s" if step["DurationSeconds"] is not None else ""
        reused = f", reused from {step['ReusedFrom']}" if step["ReusedFrom"] else ""
        lines.append(f"  {step['Name']}: {step['StatusCode']}{took}{reused}")
        lines.extend(f"      why: {why}" for why in step["Why"])
        lines.extend(f"      output {k}: {v}" for k, v in step["Outputs"].items())
        if step["LogFolder"]:
            lines.append(f"      logs: {step['LogFolder']}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _when(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else None


def _duration(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) if start and end else None


def _int(value: str, key: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"{key} {value!r}: must be a version number or 'latest'")
    return int(value)


LOG_FILES = ("stdout.txt", "stderr.txt")
FOLLOW_POLL_S = 0.5


def print_logs(
    reader: WorkspaceReader, run_id: str, step: str | None, *, follow: bool, out=None
) -> int:
    """Each step's stdout and stderr, in step order, headed by the step's name; with
    ``follow``, what steps go on writing too, until the run is no longer Queued or Running."""
    out = out or sys.stdout
    with reader._lock:
        run = reader.store.one("SELECT status FROM runs WHERE run_id=?", (run_id,))
        names = [
            r["step"]
            for r in reader.store.all(
                "SELECT step FROM step_runs WHERE run_id=? ORDER BY seq", (run_id,)
            )
        ]
    if run is None:
        raise ConfigError(f"run {run_id!r} not found (see: amlops runs list)")
    if step is not None and step not in names:
        raise ConfigError(f"run {run_id!r} has no step {step!r} (steps: {', '.join(names)})")
    offsets: dict[Path, int] = {}
    shown: set[Path] = set()
    while True:
        for name in [step] if step else names:
            with reader._lock:
                row = reader.store.one(
                    "SELECT * FROM step_runs WHERE run_id=? AND step=?", (run_id, name)
                )
                folder, logs_from = views.log_folder(reader.store, reader.ws, row)
            if folder is None:
                continue  # not started yet
            reused = f" (reused from {logs_from})" if logs_from else ""
            for log in LOG_FILES:
                file = folder / log
                if not file.is_file():
                    continue
                with file.open("rb") as fh:
                    fh.seek(offsets.get(file, 0))
                    text = fh.read()
                    offsets[file] = fh.tell()
                if text:
                    if file not in shown:
                        out.write(f"==> {name}/{log}{reused} <==\n")
                        shown.add(file)
                    out.write(text.decode(errors="replace"))
                    out.flush()
        if not follow:
            return 0
        with reader._lock:
            status = reader.store.one("SELECT status FROM runs WHERE run_id=?", (run_id,))
        if status["status"] not in ("Queued", "Running", "NotStarted"):
            follow = False  # one last read: what was written as it ended
        time.sleep(FOLLOW_POLL_S)
