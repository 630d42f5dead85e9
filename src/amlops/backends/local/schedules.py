"""Schedules on the local workspace, reconciled by name exactly as on Azure ML v1.

Each configured name has at most one Active schedule; a change updates it in place, a name
gone from config or set ``enabled: false`` is disabled (never deleted, as in v1). Schedules
target an endpoint, so they follow its default version. Recurrences start yesterday at 00:00
unless config gives ``start_time``, as the Azure backend does, so both fire at the same wall
times; creating or updating one never fires a run.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amlops.backends.base import CREATED, DISABLED, UPDATED, Change
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import DEFAULT_DATASTORE, LocalWorkspace
from amlops.config import DatastoreTrigger, Recurrence, ScheduleConfig
from amlops.content import hash_text
from amlops.errors import ConfigError
from amlops.policy import ACTIVE, DATASTORE, RECURRENCE, ExistingSchedule, plan_schedules
from amlops.recurrence import default_start_time, zone
from amlops.schedule_rules import action_change, check_parameters


def definition(sc: ScheduleConfig) -> dict[str, Any]:
    """What a schedule row stores: everything config says about the schedule."""
    return {
        "recurrence": asdict(sc.recurrence) if sc.recurrence else None,
        "datastore_trigger": asdict(sc.datastore_trigger) if sc.datastore_trigger else None,
        "parameters": dict(sc.parameters),
        "description": sc.description,
    }


def recurrence_of(row) -> Recurrence | None:
    doc = json.loads(row["definition"])["recurrence"]
    if doc is None:
        return None
    return Recurrence(**{**doc, "hours": tuple(doc["hours"]), "minutes": tuple(doc["minutes"]),
                         "week_days": tuple(doc["week_days"])})  # fmt: skip


def trigger_of(row) -> DatastoreTrigger | None:
    doc = json.loads(row["definition"])["datastore_trigger"]
    return None if doc is None else DatastoreTrigger(**doc)


def watched_folder(ws: LocalWorkspace, trigger: DatastoreTrigger) -> Path:
    return ws.datastore(trigger.datastore) / (trigger.path or "")


def blob_signatures(folder: Path) -> dict[str, str]:
    """Files directly in folder (v1 does not watch subfolders), each with size and mtime."""
    if not folder.is_dir():
        return {}
    found = {}
    for entry in folder.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            stat = entry.stat()
            found[entry.name] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return found


def reconcile(
    ws: LocalWorkspace,
    store: Store,
    schedules: Sequence[ScheduleConfig],
    kinds: Mapping[str, Mapping[str, str]],
    *,
    where: str,
    plan: bool,
    only: Collection[str] | None = None,
) -> list[Change]:
    """Make the workspace's schedules match config; ``kinds`` maps pipeline -> parameter kinds;
    ``only``: touch just the schedules of these pipelines."""
    for sc in schedules:
        _validate(ws, sc, kinds, where)
    if plan:
        return _reconcile(ws, store.db, schedules, plan=True, only=only)
    with store.transaction() as db:
        return _reconcile(ws, db, schedules, plan=False, only=only)


def _validate(
    ws: LocalWorkspace, sc: ScheduleConfig, kinds: Mapping[str, Mapping[str, str]], where: str
) -> None:
    key = f"{where}: schedules.{sc.name}"
    if sc.pipeline not in kinds:
        raise ConfigError(
            f"{key}.pipeline: {sc.pipeline!r} has no endpoint yet; run the publish stage first"
        )
    check_parameters(sc, kinds[sc.pipeline], where)
    if sc.recurrence is not None:
        try:
            zone(sc.recurrence.time_zone)
        except ValueError as exc:
            raise ConfigError(f"{key}.recurrence.time_zone: {exc}") from None
    trig = sc.datastore_trigger
    # The default datastore exists in every workspace, even one a --plan has not created yet.
    known = {DEFAULT_DATASTORE}
    if ws.datastores.is_dir():
        known |= {p.name for p in ws.datastores.iterdir() if p.is_dir()}
    if trig is not None and sc.enabled and trig.datastore not in known:
        raise ConfigError(
            f"{key}.datastore_trigger.datastore: no datastore {trig.datastore!r} in the local "
            f"workspace (datastores: {', '.join(sorted(known))})"
        )


def _reconcile(
    ws: LocalWorkspace,
    db,
    schedules: Sequence[ScheduleConfig],
    *,
    plan: bool,
    only: Collection[str] | None,
):
    rows = db.execute("SELECT * FROM schedules ORDER BY created_at DESC").fetchall()
    existing = [
        ExistingSchedule(
            id=row["id"],
            name=row["name"],
            target=row["endpoint"],
            kind=_kind(row),
            active=row["status"] == ACTIVE,
            fingerprint=row["fingerprint"],  # every local schedule is amlops'
            handle=row,
        )
        for row in rows
    ]
    actions = plan_schedules(
        schedules,
        existing,
        target=lambda sc: sc.pipeline,
        fingerprint=_fingerprint,
        in_scope=None if only is None else lambda s: s.target in only,
    )
    now = time.time()
    changes: list[Change] = []
    for act in actions:
        keep = act.existing
        schedule_id = keep.id if keep is not None else None
        if act.action == DISABLED and not plan:
            _disable(db, schedule_id, now)
        elif act.action in (CREATED, UPDATED):
            if schedule_id is None and not plan:
                schedule_id = f"sched_{secrets.token_hex(6)}"
            if not plan:
                _write(ws, db, act.desired, keep and keep.handle, schedule_id, act.fingerprint, now)
        changes.append(action_change(act, schedule_id))
    return changes


def _fingerprint(sc: ScheduleConfig) -> str:
    return hash_text(json.dumps({"pipeline": sc.pipeline, **definition(sc)}, sort_keys=True))[:12]


def _write(ws: LocalWorkspace, db, sc: ScheduleConfig, keep, schedule_id: str, fp: str, now: float):
    doc = definition(sc)
    if sc.recurrence is not None:
        # Keep the start a schedule was created with: moving it would shift its fire times.
        kept = recurrence_of(keep) if keep is not None else None
        start = sc.recurrence.start_time or (kept.start_time if kept else None)
        doc["recurrence"]["start_time"] = start or default_start_time(datetime.now(UTC))
    if keep is None:
        db.execute(
            "INSERT INTO schedules (id, name, endpoint, status, fingerprint, definition,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (schedule_id, sc.name, sc.pipeline, ACTIVE, fp, json.dumps(doc), now, now),
        )
    else:
        db.execute(
            "UPDATE schedules SET status=?, fingerprint=?, definition=?, updated_at=? WHERE id=?",
            (ACTIVE, fp, json.dumps(doc), now, schedule_id),
        )
    # What is already in a watched folder is the baseline: only later changes fire runs.
    db.execute("DELETE FROM schedule_blobs WHERE schedule_id=?", (schedule_id,))
    if sc.datastore_trigger is not None:
        folder = watched_folder(ws, sc.datastore_trigger)
        folder.mkdir(parents=True, exist_ok=True)
        db.executemany(
            "INSERT INTO schedule_blobs VALUES (?, ?, ?)",
            [(schedule_id, name, sig) for name, sig in blob_signatures(folder).items()],
        )


def _kind(row) -> str:
    return RECURRENCE if json.loads(row["definition"])["recurrence"] else DATASTORE


def _disable(db, schedule_id: str, now: float) -> None:
    db.execute(
        "UPDATE schedules SET status='Disabled', updated_at=? WHERE id=?", (now, schedule_id)
    )


def next_fire_time(row, now: float) -> float | None:
    """When an Active recurrence fires next (epoch seconds); None for a trigger, a disabled
    schedule, or one whose time zone config no longer accepts."""
    from amlops.recurrence import anchor_of, next_fire

    rec = recurrence_of(row)
    if rec is None or row["status"] != ACTIVE:
        return None
    created = datetime.fromtimestamp(row["created_at"], UTC)
    try:
        return next_fire(rec, datetime.fromtimestamp(now, UTC), anchor_of(rec, created)).timestamp()
    except ValueError:
        return None
