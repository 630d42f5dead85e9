"""Where everything of a local workspace lives on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amlops.backends.local.store import Store
from amlops.backends.local.token import ensure_token

DEFAULT_DATASTORE = "workspaceblobstore"


@dataclass(frozen=True)
class LocalWorkspace:
    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "metadata.db"

    @property
    def datastores(self) -> Path:
        return self.root / "datastores"

    def datastore(self, name: str) -> Path:
        return self.datastores / name

    @property
    def environments(self) -> Path:
        return self.root / "environments"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_lock(self) -> Path:
        """Held while MLflow's tables or a pipeline's MLflow run are created (runtime.py)."""
        return self.root / "mlflow.lock"

    @property
    def mlflow_records(self) -> Path:
        """Held (shared) by each run's MLflow record while it works (mlflow_record.py)."""
        return self.root / "mlflow.records"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    def exists(self) -> bool:
        return self.db_path.exists()

    def open_store(self) -> Store:
        for folder in (self.datastore(DEFAULT_DATASTORE), self.environments, self.runs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        ensure_token(self.root)  # what `amlops serve` asks callers for
        return Store(self.db_path)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def abs(self, rel: str) -> Path:
        return self.root / rel
