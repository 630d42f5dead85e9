"""The workspace database: opened by many processes at once, and upgraded in place."""

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from amlops.backends.local.store import SCHEMA_VERSION, Store
from amlops.errors import AmlopsError


def _open_together(path: Path, start) -> None:
    start.wait()
    store = Store(path)
    store.close()


def test_processes_opening_a_new_workspace_together_all_succeed(tmp_path):
    """Deploys started together on a fresh checkout must not fail with "database is locked"."""
    context = multiprocessing.get_context("spawn")
    failures = []
    for round_ in range(8):
        path = tmp_path / f"round{round_}" / "metadata.db"
        path.parent.mkdir()
        start = context.Barrier(8)
        procs = [context.Process(target=_open_together, args=(path, start)) for _ in range(8)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        failures += [proc.exitcode for proc in procs if proc.exitcode != 0]
        store = Store(path)
        assert store.one("PRAGMA journal_mode")[0] == "wal"
        store.close()
    assert failures == []


def _downgrade_to_v1(path: Path) -> None:
    """What a workspace made before endpoints and schedules existed looks like."""
    with sqlite3.connect(path) as db:
        db.executescript(
            "ALTER TABLE runs DROP COLUMN origin;"
            "ALTER TABLE step_runs DROP COLUMN reuse_key; ALTER TABLE step_runs DROP COLUMN why;"
            "DROP TABLE schedule_blobs; DROP TABLE schedules;"
            "DROP TABLE endpoint_versions; DROP TABLE endpoints;"
            "UPDATE meta SET value='1' WHERE key='schema_version';"
            "INSERT INTO runs (run_id, pipeline, status, parameters, created_at)"
            " VALUES ('old_run', 'train', 'Completed', '{}', 0);"
        )


def test_an_older_workspace_is_upgraded_in_place_keeping_its_runs(tmp_path):
    path = tmp_path / "metadata.db"
    Store(path).close()
    _downgrade_to_v1(path)
    store = Store(path)
    assert store.one("SELECT value FROM meta WHERE key='schema_version'")[0] == str(SCHEMA_VERSION)
    assert store.one("SELECT run_id, origin FROM runs")[:] == ("old_run", None)
    assert store.one("SELECT COUNT(*) FROM endpoints")[0] == 0  # the new tables exist
    assert store.one("SELECT reuse_key, why FROM step_runs") is None  # and new columns
    store.close()


def test_a_workspace_from_a_newer_amlops_is_refused_untouched(tmp_path):
    path = tmp_path / "metadata.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(AmlopsError, match="schema version 99 is newer than this amlops"):
        Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "99"
