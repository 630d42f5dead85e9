"""Versioned assets (datasets, environments): a new version only when the content changed."""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from amlops.backends.base import UNCHANGED, Change
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import DEFAULT_DATASTORE, LocalWorkspace
from amlops.config import DatasetConfig, EnvironmentConfig
from amlops.content import hash_tree
from amlops.errors import ConfigError
from amlops.policy import decide_version
from amlops.samples import materialise


def register_dataset(
    ws: LocalWorkspace, store: Store, ds: DatasetConfig, *, plan: bool, where: str
) -> Change:
    """Copy the dataset's files into the default datastore as a new version if they changed."""

    datastore = ds.datastore or DEFAULT_DATASTORE
    in_datastore = ws.datastore(datastore) / ds.datastore_path if ds.datastore_path else None

    def fill(staging: Path) -> None:
        if ds.source:
            cache = ws.root / "cache" / "samples" if ws.exists() else None
            materialise(ds.source, staging, f"{where}.source", cache=cache, fill_cache=not plan)
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

    change = _register(
        ws,
        store,
        kind="dataset",
        name=ds.name,
        fill=fill,
        home=ws.datastore(DEFAULT_DATASTORE) / "datasets" / ds.name,
        properties={"kind": ds.kind, "description": ds.description},
        plan=plan,
    )
    if ds.upload and in_datastore is not None and not plan:
        registered = ws.abs(store.asset("dataset", ds.name, int(change.version))["path"])
        # Under the write lock: two deploys uploading to one path take turns.
        with store.transaction():
            _upload(registered, in_datastore)
    return change


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
        if plan or (latest is not None and latest["content_hash"] == content_hash):
            return decide_version(kind, name, content_hash, _latest(latest))
        # Decide and commit under the write lock, so two deploys registering the same
        # asset at once get one version, not two folders racing for the same number.
        with store.transaction() as db:
            change = decide_version(
                kind, name, content_hash, _latest(store.latest_asset(kind, name))
            )
            if change.action == UNCHANGED:
                return change
            target = home / str(change.version)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # no row names it: left by a crash before the insert
                shutil.rmtree(target)
            staging.rename(target)
            try:
                store.insert_asset(
                    db, kind, name, int(change.version), content_hash, ws.rel(target), properties
                )
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
        return change
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _latest(row) -> tuple[int, str] | None:
    return None if row is None else (row["version"], row["content_hash"])


def _upload(source: Path, target: Path) -> None:
    """Upload as Azure's does: same-named files are overwritten, other files are left alone.

    Other files matter: users drop new data next to the uploaded sample, and a datastore
    trigger watches that folder. Each file is replaced in one rename, so a reader (a step,
    a trigger) never sees half of one, and an unchanged file is not touched at all.
    """
    for file in sorted(source.rglob("*")):
        if not file.is_file():
            continue
        dest = target / file.relative_to(source)
        if dest.is_file() and filecmp.cmp(file, dest, shallow=False):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.uploading")
        shutil.copy2(file, partial)
        partial.replace(dest)


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
