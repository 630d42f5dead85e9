"""Datasets and environments: a new version only when the definition changed.

``WorkspaceAssets`` is the one place that talks to the dataset, environment, datastore and
artifact services (which have no offline twin in the SDK); tests swap it for an in-memory one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from amlops.backends.base import Change
from amlops.backends.dataset_blobs import (
    BlobLocation,
    dataset_version,
    upload_dataset_files,
)
from amlops.backends.runtime_wheel import build_wheel, is_runtime_pin, source_hash
from amlops.backends.sdk_errors import first_line, is_not_found
from amlops.config import DatasetConfig, EnvironmentConfig
from amlops.content import hash_text
from amlops.errors import AmlopsError, ConfigError
from amlops.policy import decide_version

DATASET_TAG = "amlops_fingerprint"
# v1 Environments have no tags; an environment variable survives registration and says which
# definition a version holds (it is not a secret and harmless inside runs).
ENV_FINGERPRINT_VAR = "AMLOPS_ENV_FINGERPRINT"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    fingerprint: str | None


class AssetService(Protocol):
    """Reads and writes of workspace assets outside the pipeline service."""

    def latest_dataset(self, name: str) -> Registered | None: ...

    def register_dataset(
        self, cfg: DatasetConfig, datastore: str, base: str, fp: str, upload_from: Path | None
    ) -> Registered:
        """Register ``cfg`` at ``base`` on ``datastore``; with ``upload_from``, first upload
        that folder to its content path under ``base`` (dataset_blobs.content_path)."""

    def latest_environment(self, name: str) -> Registered | None: ...

    def register_environment(self, env: Any) -> Registered: ...

    def private_wheel_url(self, wheel: Path) -> str: ...

    # compile.Resolver
    def datastore(self, name: str) -> Any: ...

    def dataset(self, name: str, version: str | int) -> Any: ...

    def environment(self, name: str) -> Any: ...

    def default_datastore(self) -> Any: ...

    def saved(self, dataset: Any) -> Any: ...

    def compute(self, name: str) -> Any: ...


class WorkspaceAssets:
    """AssetService over a live workspace (azureml-core); dataset files go to blob storage
    with ``credential`` (an azure-identity TokenCredential), never through azureml-dataprep,
    which would resolve the data identity to an interactive user login."""

    def __init__(self, workspace: Any, credential: Any = None):
        self.workspace = workspace
        self.credential = credential

    def latest_dataset(self, name: str) -> Registered | None:
        from azureml.core import Dataset

        ds = _get_or_none(lambda: Dataset.get_by_name(self.workspace, name), f"dataset {name!r}")
        if ds is None:
            return None
        return Registered(name, str(ds.version), (ds.tags or {}).get(DATASET_TAG))

    def register_dataset(
        self, cfg: DatasetConfig, datastore: str, base: str, fp: str, upload_from: Path | None
    ) -> Registered:
        from azureml.core import Dataset
        from azureml.data.datapath import DataPath

        store = self.datastore(datastore)
        path = base
        if upload_from is not None:
            location = BlobLocation.of_datastore(store)
            path = upload_dataset_files(upload_from, location, base, self.credential).path
        target = DataPath(store, path)
        # No validation and no type inference: both read the data through azureml-dataprep.
        # Columns reach code as text, as the local workspace hands them over too.
        if cfg.kind == "tabular":
            ds = Dataset.Tabular.from_delimited_files(
                path=target, validate=False, infer_column_types=False
            )
        else:
            ds = Dataset.File.from_files(path=target, validate=False)
        ds = ds.register(
            self.workspace,
            name=cfg.name,
            description=cfg.description,
            tags={DATASET_TAG: fp},
            create_new_version=True,
        )
        return Registered(cfg.name, str(ds.version), fp)

    def latest_environment(self, name: str) -> Registered | None:
        from azureml.core import Environment

        env = _get_or_none(lambda: Environment.get(self.workspace, name), f"environment {name!r}")
        if env is None:
            return None
        return Registered(
            name, str(env.version), env.environment_variables.get(ENV_FINGERPRINT_VAR)
        )

    def register_environment(self, env: Any) -> Registered:
        registered = env.register(self.workspace)
        return Registered(
            registered.name,
            str(registered.version),
            registered.environment_variables.get(ENV_FINGERPRINT_VAR),
        )

    def private_wheel_url(self, wheel: Path) -> str:
        from azureml.core import Environment

        return Environment.add_private_pip_wheel(self.workspace, str(wheel), exist_ok=True)

    def datastore(self, name: str) -> Any:
        from azureml.core import Datastore

        return Datastore.get(self.workspace, name)

    def dataset(self, name: str, version: str | int) -> Any:
        from azureml.core import Dataset

        return Dataset.get_by_name(self.workspace, name, version=version)

    def environment(self, name: str) -> Any:
        from azureml.core import Environment

        return Environment.get(self.workspace, name)

    def default_datastore(self) -> Any:
        return self.workspace.get_default_datastore()

    def saved(self, dataset: Any) -> Any:
        dataset._ensure_saved(self.workspace)
        return dataset

    def compute(self, name: str) -> Any:
        from azureml.core.compute import ComputeTarget

        return ComputeTarget(workspace=self.workspace, name=name)


def register_datasets(
    datasets: Sequence[DatasetConfig],
    assets: AssetService,
    *,
    actual_datastore: Callable[[str], str],
    materialise: Callable[[DatasetConfig, Path], Path],
    where: str,
    plan: bool,
) -> list[Change]:
    """Register each dataset whose fingerprint differs from its latest version's tag."""
    changes = []
    for cfg in datasets:
        key = f"{where}: datasets.{cfg.name}"
        if cfg.datastore is None:
            raise ConfigError(f"{key}.datastore: Azure datasets live on a datastore; name one")
        if cfg.upload and cfg.source is None and cfg.path is None:
            raise ConfigError(f"{key}.upload: needs a source or a path to upload")
        datastore = actual_datastore(cfg.datastore)
        with tempfile.TemporaryDirectory(prefix="amlops-upload-") as tmp:
            upload_from = materialise(cfg, Path(tmp)) if cfg.upload else None
            version = dataset_version(cfg, datastore, upload_from)
            fp = version.fingerprint
            detail = {"datastore": datastore, "path": version.path, "fingerprint": fp}
            change = _decide("dataset", cfg.name, fp, assets.latest_dataset(cfg.name), detail)
            if plan or not change.changed:
                changes.append(change)
                continue
            registered = assets.register_dataset(cfg, datastore, version.base, fp, upload_from)
            detail["uploaded"] = upload_from is not None
            changes.append(replace(change, version=registered.version, detail=detail))
    return changes


def environment_definition(
    cfg: EnvironmentConfig,
    root: Path,
    wheel_url: Callable[[Path], str],
    *,
    plan: bool,
    runtime: bool = False,
) -> tuple[Any, str, bool]:
    """The v1 Environment for ``cfg``, its fingerprint, and whether it carries our wheel.

    This project's runtime goes in as a private wheel built from src/amlops (uploaded only
    when registering) when ``runtime`` says a step needs it or the conda file lists ``amlops``
    under pip (that entry is replaced: the package is not on any index).
    """
    from azureml.core import Environment

    env = Environment.from_conda_specification(cfg.name, str(cfg.conda_file))
    deps = env.python.conda_dependencies
    listed = [p for p in deps.pip_packages if is_runtime_pin(p)]
    wants_runtime = runtime or bool(listed)
    runtime_hash = source_hash(root) if wants_runtime else ""
    fp = hash_text(cfg.conda_file.read_text(), runtime_hash)[:16]
    for spec in listed:
        deps.remove_pip_package(spec)
    if wants_runtime and not plan:
        with tempfile.TemporaryDirectory(prefix="amlops-wheel-") as tmp:
            deps.add_pip_package(wheel_url(build_wheel(root, Path(tmp))))
    env.environment_variables[ENV_FINGERPRINT_VAR] = fp
    return env, fp, wants_runtime


def register_environments(
    environments: Sequence[EnvironmentConfig],
    assets: AssetService,
    *,
    root: Path,
    plan: bool,
    runtime_envs: set[str] | frozenset[str] = frozenset(),
) -> list[Change]:
    changes = []
    for cfg in environments:
        needs = cfg.name in runtime_envs
        # Fingerprint first (cheap, no upload); build and upload the wheel only to register.
        _, fp, runtime = environment_definition(
            cfg, root, assets.private_wheel_url, plan=True, runtime=needs
        )
        detail = {"conda_file": str(cfg.conda_file), "fingerprint": fp, "private_wheel": runtime}
        change = _decide("environment", cfg.name, fp, assets.latest_environment(cfg.name), detail)
        if plan or not change.changed:
            changes.append(change)
            continue
        env, _, _ = environment_definition(
            cfg, root, assets.private_wheel_url, plan=False, runtime=needs
        )
        registered = assets.register_environment(env)
        changes.append(replace(change, version=registered.version))
    return changes


def _decide(
    kind: str, name: str, fp: str, latest: Registered | None, detail: dict[str, Any]
) -> Change:
    """The shared version decision; an asset amlops did not tag never matches."""
    known = None if latest is None else (int(latest.version), latest.fingerprint or "")
    return replace(decide_version(kind, name, fp, known), detail=detail)


def _get_or_none(fetch: Callable[[], Any], what: str) -> Any:
    """The asset ``fetch`` reads, None when the service says it does not exist."""
    try:
        return fetch()
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise AmlopsError(f"reading {what} failed: {first_line(exc)}") from None
