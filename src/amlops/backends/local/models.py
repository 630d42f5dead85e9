"""Registered models of a local workspace, read from its MLflow model registry.

Read straight from the registry's SQLite tables: importing mlflow takes seconds, and
``amlops models list`` or ``deploy --plan`` should answer at once. The tables are MLflow's
(the SQLAlchemy store's, for the mlflow this project pins); a test checks the answer equals
MlflowClient's, and a database this reading does not understand falls back to MlflowClient.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from amlops.backends.local.workspace import LocalWorkspace

DELETED = "Deleted_Internal"  # mlflow's STAGE_DELETED_INTERNAL: a deleted version's row stays


def registered_models(ws: LocalWorkspace) -> list[dict[str, Any]]:
    """Every version of every registered model, by name, newest version first."""
    db = ws.root / "mlflow.db"
    if not db.exists():
        return []
    try:
        found = _from_tables(db)
    except sqlite3.Error:
        found = _from_client(ws)
    return sorted(found, key=lambda m: (m["name"], -int(m["version"])))


def _from_tables(db) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        aliases: dict[tuple[str, int], list[str]] = {}
        for name, alias, version in conn.execute(
            "SELECT name, alias, version FROM registered_model_aliases"
        ):
            aliases.setdefault((name, version), []).append(alias)
        tags: dict[tuple[str, int], dict[str, str]] = {}
        for name, version, key, value in conn.execute(
            "SELECT name, version, key, value FROM model_version_tags"
        ):
            tags.setdefault((name, version), {})[key] = value
        rows = conn.execute(
            "SELECT name, version, run_id FROM model_versions WHERE current_stage != ?",
            (DELETED,),
        ).fetchall()
    finally:
        conn.close()
    return [
        {
            "name": name,
            "version": str(version),
            "aliases": sorted(aliases.get((name, version), [])),
            "tags": tags.get((name, version), {}),
            "run_id": run_id,
        }
        for name, version, run_id in rows
    ]


def _from_client(ws: LocalWorkspace) -> list[dict[str, Any]]:
    import os

    from amlops.telemetry import telemetry_off

    telemetry_off(os.environ)
    # Seconds to import mlflow: only for a registry the tables above do not describe.
    from amlops.runtime import mlflow_client

    client = mlflow_client(ws.mlflow_lock, ws.mlflow_uri)
    found = []
    for model in client.search_registered_models():
        for version in client.search_model_versions(f"name='{model.name}'"):
            found.append(
                {
                    "name": model.name,
                    "version": str(version.version),
                    "aliases": sorted(a for a, v in model.aliases.items() if v == version.version),
                    "tags": dict(version.tags),
                    "run_id": version.run_id,
                }
            )
    return found
