"""Schedules on the local workspace: reconciled by name, fired by recurrence and by new data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from amlops.backends.local.service import LocalService
from amlops.config import DatastoreTrigger, Recurrence, ScheduleConfig
from amlops.errors import ConfigError
from amlops.spec import DataPathParam, Output, Pipeline, ScriptStep

HOURLY = Recurrence(frequency="Hour", interval=1, start_time="2026-01-01T00:00:00")


def nightly(**changes) -> ScheduleConfig:
    recurrence = Recurrence(frequency="Day", interval=1, hours=(2,), minutes=(30,))
    return ScheduleConfig(**{"name": "nightly", "pipeline": "toy", "recurrence": recurrence,
                             **changes})  # fmt: skip


@pytest.fixture
def published(toy):
    """The toy (its backend, its root) with the toy pipeline and a 'reader', whose DataPathParam
    a trigger can set, both published."""
    backend, pipeline, tmp_path = toy.backend, toy.pipeline, toy.root
    reader = Pipeline(
        "reader",
        [
            ScriptStep(
                name="read",
                source_dir=tmp_path / "steps" / "a",
                arguments=[
                    "--blob",
                    DataPathParam("incoming", "workspaceblobstore", "incoming"),
                    "--out",
                    Output("o"),
                ],
            )  # fmt: skip
        ],
    )
    (backend.ws.datastore("workspaceblobstore") / "incoming").mkdir()
    backend.build([pipeline(), reader], plan=False)
    backend.publish([pipeline(), reader], plan=False)
    return toy


def rows(backend, name: str) -> list[dict]:
    found = backend.store.all("SELECT * FROM schedules WHERE name=? ORDER BY created_at", (name,))
    return [dict(r) for r in found]


def actions(changes) -> list[tuple[str, str]]:
    return [(c.name, c.action) for c in changes]


def test_a_schedule_is_created_once_updated_in_place_and_disabled_never_duplicated(published):
    backend = published.backend
    assert actions(backend.schedule([nightly()], plan=False)) == [("nightly", "created")]
    assert actions(backend.schedule([nightly()], plan=False)) == [("nightly", "unchanged")]
    schedule_id = rows(backend, "nightly")[0]["id"]
    updated = nightly(parameters={"alpha": 0.2})
    assert actions(backend.schedule([updated], plan=True)) == [("nightly", "updated")]
    assert json.loads(rows(backend, "nightly")[0]["definition"])["parameters"] == {}  # plan
    assert actions(backend.schedule([updated], plan=False)) == [("nightly", "updated")]
    assert [r["id"] for r in rows(backend, "nightly")] == [schedule_id]
    assert actions(backend.schedule([nightly(enabled=False)], plan=False)) == [
        ("nightly", "disabled")
    ]
    assert actions(backend.schedule([updated], plan=False)) == [("nightly", "updated")]
    assert [(r["id"], r["status"]) for r in rows(backend, "nightly")] == [(schedule_id, "Active")]
    assert actions(backend.schedule([], plan=False)) == [("nightly", "disabled")]
    assert rows(backend, "nightly")[0]["status"] == "Disabled"  # removed from config: disabled


def test_an_update_keeps_the_start_so_fire_times_do_not_shift(published):
    backend = published.backend
    backend.schedule([nightly()], plan=False)
    start = json.loads(rows(backend, "nightly")[0]["definition"])["recurrence"]["start_time"]
    assert start.endswith("T00:00:00")  # yesterday at midnight: creation fires nothing
    backend.schedule([nightly(description="changed")], plan=False)
    kept = json.loads(rows(backend, "nightly")[0]["definition"])["recurrence"]["start_time"]
    assert kept == start


def test_switching_a_schedule_to_a_trigger_replaces_it(published):
    backend = published.backend
    backend.schedule([nightly()], plan=False)
    trigger = DatastoreTrigger(datastore="workspaceblobstore", path="incoming")
    changes = backend.schedule(
        [nightly(recurrence=None, datastore_trigger=trigger, pipeline="reader")], plan=False
    )
    assert sorted(actions(changes)) == [("nightly", "created"), ("nightly", "disabled")]
    assert [r["status"] for r in rows(backend, "nightly")] == ["Disabled", "Active"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (nightly(parameters={"beta": 1}), "parameters.beta: pipeline 'toy' has"),
        (nightly(pipeline="ghost"), "pipeline: 'ghost' has no endpoint yet"),
        (
            nightly(recurrence=Recurrence(frequency="Day", interval=1, time_zone="Mars/Olympus")),
            "recurrence.time_zone: unknown time zone 'Mars/Olympus'",
        ),
        (
            nightly(
                recurrence=None,
                pipeline="reader",
                datastore_trigger=DatastoreTrigger(datastore="lake", path="in"),
            ),
            "datastore_trigger.datastore: no datastore 'lake' in the local workspace",
        ),
        (
            nightly(
                recurrence=None,
                datastore_trigger=DatastoreTrigger(
                    datastore="workspaceblobstore", path="in", data_path_parameter="alpha"
                ),
            ),
            "datastore_trigger.data_path_parameter: pipeline 'toy' has no DataPathParam 'alpha'",
        ),
    ],
)
def test_a_bad_schedule_names_its_key_and_changes_nothing(published, schedule, message):
    backend = published.backend
    with pytest.raises(ConfigError, match=re.escape(f"config: schedules.nightly.{message}")):
        backend.schedule([schedule], plan=False)
    assert backend.store.one("SELECT COUNT(*) FROM schedules")[0] == 0


def test_a_recurrence_fires_once_per_fire_time_and_never_at_creation(published):
    backend = published.backend
    backend.schedule([nightly(recurrence=HOURLY)], plan=False)
    created = rows(backend, "nightly")[0]["updated_at"]
    service = LocalService(backend.ws.root, clock=lambda: created)
    next_hour = (created // 3600 + 1) * 3600
    assert service.tick(next_hour - 0.001) == []  # no fire time has passed since creation
    [run_id] = service.tick(next_hour + 1)
    assert service.tick(next_hour + 30) == []  # the same fire time never fires twice
    # Five hours later in one look (the service was paused): one run, not five.
    assert len(service.tick(next_hour + 5 * 3600 + 1)) == 1
    run = backend.store.one("SELECT * FROM runs WHERE run_id=?", (run_id,))
    assert run["status"] == "Queued" and run["pipeline"] == "toy"
    origin = json.loads(run["origin"])
    assert (origin["type"], origin["schedule"]) == ("Schedule", "nightly")
    assert (origin["endpoint"], origin["version"]) == ("toy", "0")
    last = rows(backend, "nightly")[0]
    assert last["last_run_id"] != run_id and last["last_fired"] == next_hour + 5 * 3600 + 1


def test_a_trigger_fires_one_run_per_new_or_changed_file_and_binds_it(published):
    backend = published.backend
    folder = backend.ws.datastore("workspaceblobstore") / "incoming"
    (folder / "old.csv").write_text("a\n")
    trigger = DatastoreTrigger(
        datastore="workspaceblobstore", path="incoming", data_path_parameter="incoming"
    )
    schedule = ScheduleConfig(name="on-data", pipeline="reader", datastore_trigger=trigger)
    backend.schedule([schedule], plan=False)
    service = LocalService(backend.ws.root, poll_seconds=0)
    now = datetime.now(UTC).timestamp()
    assert service.tick(now) == []  # what was there at creation is the baseline
    (folder / "new.csv").write_text("b\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "deeper.csv").write_text("c\n")  # subfolders are not watched, as in v1
    [run_id] = service.tick(now + 1)
    assert service.tick(now + 2) == []
    (folder / "old.csv").write_text("a changed\n")
    [second] = service.tick(now + 3)
    bound = {
        r: json.loads(backend.store.one("SELECT parameters FROM runs WHERE run_id=?", (r,))[0])
        for r in (run_id, second)
    }
    assert bound[run_id]["incoming"] == "workspaceblobstore/incoming/new.csv"
    assert bound[second]["incoming"] == "workspaceblobstore/incoming/old.csv"


def test_a_trigger_without_a_path_watches_the_datastore_root_as_v1_does(published):
    backend = published.backend
    root = backend.ws.datastore("workspaceblobstore")
    trigger = DatastoreTrigger(datastore="workspaceblobstore", data_path_parameter="incoming")
    schedule = ScheduleConfig(name="on-root", pipeline="reader", datastore_trigger=trigger)
    backend.schedule([schedule], plan=False)
    service = LocalService(backend.ws.root, poll_seconds=0)
    now = datetime.now(UTC).timestamp()
    assert service.tick(now) == []
    (root / "dropped.csv").write_text("a\n")
    [run_id] = service.tick(now + 1)
    row = backend.store.one("SELECT parameters FROM runs WHERE run_id=?", (run_id,))
    assert json.loads(row[0])["incoming"] == "workspaceblobstore/dropped.csv"


def test_the_service_runs_what_a_schedule_queued(published):
    backend = published.backend
    backend.schedule([nightly(recurrence=HOURLY)], plan=False)
    created = rows(backend, "nightly")[0]["updated_at"]
    service = LocalService(backend.ws.root, clock=lambda: created)
    [run_id] = service.tick((created // 3600 + 1) * 3600 + 1)
    service.start(schedules=False)  # picks up the Queued run, as after a restart
    service.stop(cancel=False)
    run = backend.store.one("SELECT status FROM runs WHERE run_id=?", (run_id,))
    assert run["status"] == "Completed"


def test_schedules_list_says_when_each_fires_next(published):
    from argparse import Namespace

    from amlops.backends.local.queries import WorkspaceReader

    backend = published.backend
    backend.schedule([nightly()], plan=False)
    reader = WorkspaceReader.open(backend.ws.root, "http://127.0.0.1:8765")
    try:
        [row] = reader.query("schedules", "list", Namespace())
    finally:
        reader.close()
    assert row["name"] == "nightly" and row["next_fire"] is not None
    assert row["next_fire"].endswith(":30:00")  # daily at 02:30 UTC, in local time
