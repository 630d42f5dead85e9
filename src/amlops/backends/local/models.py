"""Registered models of a local workspace, read from its MLflow model registry."""

from __future__ import annotations

from typing import Any

from amlops.backends.local.workspace import LocalWorkspace


def registered_models(ws: LocalWorkspace) -> list[dict[str, Any]]:
    """Every version of every registered model, by name, newest version first."""
    if not (ws.root / "mlflow.db").exists():
        return []
    import mlflow  # seconds to import: only when models are asked for

    client = mlflow.MlflowClient(tracking_uri=ws.mlflow_uri)
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
    return sorted(found, key=lambda m: (m["name"], -int(m["version"])))
