"""Versioned assets (datasets, environments): a new version only when the content changed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from amlops.backends.base import CREATED, UNCHANGED, UPDATED, Change
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import DEFAULT_DATASTORE, LocalWorkspace
from amlops.config import DatasetConfig, EnvironmentConfig
from amlops.content import hash_tree
from amlops.errors import ConfigError
from amlops.samples import materialise


def register_dataset(
    ws: LocalWorkspace, store: Store, ds: DatasetConfig, *, plan: bool, where: str
) -> Change:
    """Copy the dataset's files into the default datastore as a new version if they changed."""

    datastore = ds.datastore or DEFAULT_DATASTORE
    in_datastore = ws.datastore(datastore) / ds.datastore_path if ds.datastore_path else None

    def fill(staging: Path) -> None:
        if ds.source:
            materialise(ds.source, staging, f"{where}.source")
        elif ds.path is not None:
            if ds.path.is_file():
                shutil.copy2(ds.path, staging / ds.path.name)
            else:
                shutil.copytree(ds.path, staging, dirs_exist_ok=True)
        elif in_datastore is not None and in_datastore.exists():
            shutil.copytree(in_datastore, staging, dirs_exist_ok=True)
        else:
            raise ConfigError(
                f"{where}: needs a source or a path, or files already at "
                f"datastore {datastore!r} path {ds.datastore_path!r}"
            )
        _check_dataset_files(staging, ds, where)
        if ds.upload and in_datastore is not None and not plan:
            _upload(staging, in_datastore)

    return _register(
        ws,
        store,
        kind="dataset",
        name=ds.name,
        fill=fill,
        home=ws.datastore(DEFAULT_DATASTORE) / "datasets" / ds.name,
        properties={"kind": ds.kind, "description": ds.description},
        plan=plan,
    )


def register_environment(
    ws: LocalWorkspace, store: Store, env: EnvironmentConfig, *, plan: bool
) -> Change:
    """Record the conda spec; steps still run in this interpreter (see README)."""

    def fill(staging: Path) -> None:
        shutil.copy2(env.conda_file, staging / "conda.yml")

    return _register(
        ws,
        store,
        kind="environment",
        name=env.name,
        fill=fill,
        home=ws.environments / env.name,
        properties={"conda_file": str(env.conda_file)},
        plan=plan,
    )


def _register(
    ws: LocalWorkspace,
    store: Store,
    *,
    kind: str,
    name: str,
    fill: Callable[[Path], None],
    home: Path,
    properties: dict,
    plan: bool,
) -> Change:
    tmp_root = ws.tmp if ws.tmp.exists() else None
    staging = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp_root))
    try:
        fill(staging)
        content_hash = hash_tree(staging, respect_ignore=False)
        latest = store.latest_asset(kind, name)
        if latest is not None and latest["content_hash"] == content_hash:
            return Change(kind, name, UNCHANGED, str(latest["version"]))
        version = 1 if latest is None else latest["version"] + 1
        action = CREATED if latest is None else UPDATED
        detail = {"content_hash": content_hash[:12]}
        if plan:
            return Change(kind, name, action, str(version), detail)
        target = home / str(version)
        target.parent.mkdir(parents=True, exist_ok=True)
        # rename is atomic: a crash leaves either no folder or a complete one, and the row
        # is only written once the files are in place.
        if target.exists():  # left by a crash between rename and insert
            shutil.rmtree(target)
        staging.rename(target)
        try:
            with store.transaction() as db:
                store.insert_asset(
                    db, kind, name, version, content_hash, ws.rel(target), properties
                )
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return Change(kind, name, action, str(version), detail)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _upload(staging: Path, target: Path) -> None:
    """Mirror the files to their datastore path, as Azure's upload does, only if they differ."""
    if target.exists() and hash_tree(target, respect_ignore=False) == hash_tree(
        staging, respect_ignore=False
    ):
        return
    fresh = target.with_name(target.name + ".uploading")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(staging, fresh)
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _check_dataset_files(folder: Path, ds: DatasetConfig, where: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not files:
        raise ConfigError(f"{where}: {ds.path or ds.source} holds no files")
    if ds.kind == "tabular":
        not_csv = [p.name for p in files if p.suffix.lower() not in (".csv", ".tsv")]
        if not_csv:
            raise ConfigError(
                f"{where}.kind: tabular datasets are delimited files; {not_csv[0]!r} is not"
            )
