"""The local workspace's metadata: one SQLite file in WAL mode, every mutation in a transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from amlops.errors import AmlopsError

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    kind TEXT NOT NULL,            -- dataset | environment
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    path TEXT NOT NULL,            -- files of this version, relative to the workspace
    properties TEXT NOT NULL,      -- JSON
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, name, version)
);
CREATE TABLE IF NOT EXISTS pipelines (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    definition TEXT NOT NULL,      -- JSON of the spec as built
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    pipeline_version INTEGER,      -- the built version (pipelines.version) it ran, if built
    status TEXT NOT NULL,
    parameters TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    origin TEXT                    -- JSON: {"type": SDK|HTTP|Schedule, endpoint, version, schedule}
);
CREATE TABLE IF NOT EXISTS step_runs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    fingerprint TEXT,
    reused_from TEXT,              -- "<run_id>/<step>" of the step run whose outputs were reused
    exit_code INTEGER,
    start_time REAL,
    end_time REAL,
    folder TEXT,                   -- relative to the workspace
    outputs TEXT NOT NULL DEFAULT '{}',   -- JSON {output name: folder relative to workspace}
    summary TEXT,                  -- JSON, from steps that write one (ParallelStep)
    reuse_key TEXT,                -- JSON {"key", "notes"}: what the fingerprint hashed
    why TEXT,                      -- JSON list: why it ran, or what it reused
    PRIMARY KEY (run_id, step)
);
CREATE INDEX IF NOT EXISTS step_runs_fingerprint ON step_runs (fingerprint, status);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    default_version TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoint_versions (
    endpoint TEXT NOT NULL REFERENCES endpoints(name),
    version TEXT NOT NULL,         -- "0", "1", ... as Azure ML numbers them
    pipeline_version INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    snapshot TEXT NOT NULL,        -- the frozen step folders, relative to the workspace
    created_at REAL NOT NULL,
    PRIMARY KEY (endpoint, version)
);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,            -- not unique, as in Azure ML: at most one Active per name
    endpoint TEXT NOT NULL REFERENCES endpoints(name),
    status TEXT NOT NULL,          -- Active | Disabled
    fingerprint TEXT NOT NULL,
    definition TEXT NOT NULL,      -- JSON: recurrence (with its start_time) or trigger, parameters
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_fired REAL,
    last_run_id TEXT
);
CREATE TABLE IF NOT EXISTS schedule_blobs (
    schedule_id TEXT NOT NULL REFERENCES schedules(id),
    path TEXT NOT NULL,            -- relative to the watched folder
    signature TEXT NOT NULL,       -- size and mtime: a change fires one run
    PRIMARY KEY (schedule_id, path)
);
"""

# Each entry brings a workspace from version N to N+1; run once, inside one transaction.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE runs ADD COLUMN origin TEXT",),
    2: (
        "ALTER TABLE step_runs ADD COLUMN reuse_key TEXT",
        "ALTER TABLE step_runs ADD COLUMN why TEXT",
    ),
    # Runs now record the built version they ran when they start; older runs get the one
    # their endpoint version froze, or (started by deploy.py) the newest build before them.
    3: (
        "UPDATE runs SET pipeline_version = (SELECT v.pipeline_version FROM endpoint_versions v"
        " WHERE v.endpoint = json_extract(runs.origin, '$.endpoint')"
        " AND v.version = json_extract(runs.origin, '$.version'))"
        " WHERE pipeline_version IS NULL AND json_extract(origin, '$.endpoint') IS NOT NULL",
        "UPDATE runs SET pipeline_version = (SELECT MAX(p.version) FROM pipelines p"
        " WHERE p.name = runs.pipeline AND p.created_at <= runs.created_at)"
        " WHERE pipeline_version IS NULL AND json_extract(origin, '$.endpoint') IS NULL",
    ),
}


BUSY_TIMEOUT = 30.0


def _switch_to_wal(db: sqlite3.Connection) -> None:
    """Set WAL mode, waiting out other processes that are doing the same.

    Changing the journal mode of a new database needs an exclusive lock that SQLite does
    not wait for through its busy handler, so two deploys opening a fresh workspace at once
    would otherwise fail with "database is locked". Once one of them has switched, the
    setting is stored in the file and every later call is a no-op.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class Store:
    """A thin, explicit layer over the metadata database."""

    def __init__(self, path: Path | None, *, shared: bool = False):
        """Open (creating) the database at path; None gives an empty in-memory one for --plan.

        ``shared``: other threads may use this connection, one at a time (the caller locks).
        """
        self.path = path
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer never
        # upgrades a read lock mid-transaction (the classic SQLite deadlock).
        self.db = sqlite3.connect(
            path or ":memory:",
            isolation_level=None,
            timeout=BUSY_TIMEOUT,
            check_same_thread=not shared,
        )
        self.db.row_factory = sqlite3.Row
        _switch_to_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        found = self._schema_version()
        if found > SCHEMA_VERSION:
            self.db.close()
            raise AmlopsError(
                f"{path}: workspace schema version {found} is newer than this amlops "
                f"understands ({SCHEMA_VERSION}); upgrade amlops"
            )
        if found < SCHEMA_VERSION:
            self._migrate()

    def _schema_version(self) -> int:
        exists = self.one("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'")
        row = exists and self.one("SELECT value FROM meta WHERE key='schema_version'")
        return int(row["value"]) if row else 0

    def _migrate(self) -> None:
        with self.transaction() as db:
            found = self._schema_version()  # again, under the write lock
            # CREATE ... IF NOT EXISTS: adds the tables that are new, leaves what exists;
            # first, so that a migration may read a table newer than the workspace.
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if 0 < found < SCHEMA_VERSION:
                for version in range(found, SCHEMA_VERSION):
                    for statement in MIGRATIONS[version]:
                        db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    # --- assets ---------------------------------------------------------------------------

    def latest_asset(self, kind: str, name: str) -> sqlite3.Row | None:
        return self.one(
            "SELECT * FROM assets WHERE kind=? AND name=? ORDER BY version DESC LIMIT 1",
            (kind, name),
        )

    def asset(self, kind: str, name: str, version: int) -> sqlite3.Row | None:
        return self.one(
            "SELECT * FROM assets WHERE kind=? AND name=? AND version=?", (kind, name, version)
        )

    def asset_by_hash(self, kind: str, name: str, content_hash: str) -> sqlite3.Row | None:
        return self.one(
            "SELECT * FROM assets WHERE kind=? AND name=? AND content_hash=? "
            "ORDER BY version DESC LIMIT 1",
            (kind, name, content_hash),
        )

    def insert_asset(
        self, db: sqlite3.Connection, kind: str, name: str, version: int, content_hash: str,
        path: str, properties: dict[str, Any],
    ) -> None:  # fmt: skip
        db.execute(
            "INSERT INTO assets VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, name, version, content_hash, path, json.dumps(properties), time.time()),
        )

    # --- pipelines --------------------------------------------------------------------------

    def latest_pipeline(self, name: str) -> sqlite3.Row | None:
        return self.one(
            "SELECT * FROM pipelines WHERE name=? ORDER BY version DESC LIMIT 1", (name,)
        )
