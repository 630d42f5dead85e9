"""A run records the built pipeline version it ran, and its graph is drawn from that version."""

from __future__ import annotations

import sqlite3

from amlops.backends.local.service import LocalService
from amlops.backends.local.store import Store
from amlops.backends.local.views import graph


def _version(backend, run_id: str) -> int | None:
    row = backend.store.one("SELECT pipeline_version FROM runs WHERE run_id=?", (run_id,))
    return row["pipeline_version"]


def _edit_step_c(toy) -> None:
    script = toy.root / "steps" / "c" / "main.py"
    script.write_text(script.read_text() + "\n# changed\n")


def test_a_run_started_by_deploy_records_the_version_built(toy):
    backend = toy.backend
    backend.build([toy.pipeline()], plan=False)
    first = backend.run(toy.pipeline())
    _edit_step_c(toy)
    backend.build([toy.pipeline()], plan=False)
    second = backend.run(toy.pipeline())
    assert (_version(backend, first.run_id), _version(backend, second.run_id)) == (1, 2)
    drawn = graph(backend.store, backend.ws, first.run_id)
    assert drawn["complete"]
    assert {(e["from"], e["to"]) for e in drawn["edges"]} >= {
        ("step:a", "step:b"),
        ("step:b", "step:c"),
    }


def test_a_run_of_an_older_endpoint_version_records_that_version(toy):
    backend = toy.backend
    backend.build([toy.pipeline()], plan=False)
    backend.publish([toy.pipeline()], plan=False)  # endpoint version "0": build 1
    _edit_step_c(toy)
    backend.build([toy.pipeline()], plan=False)
    backend.publish([toy.pipeline()], plan=False)  # endpoint version "1": build 2
    service = LocalService(backend.ws.root)  # not started: submit only queues
    old, _, _ = service.submit("toy", "0", {}, {"type": "HTTP", "experiment": "e"})
    new, _, _ = service.submit("toy", None, {}, {"type": "HTTP", "experiment": "e"})
    assert (_version(backend, old), _version(backend, new)) == (1, 2)


def test_a_pipeline_never_built_has_no_version_and_an_incomplete_graph(toy):
    result = toy.backend.run(toy.pipeline())
    assert _version(toy.backend, result.run_id) is None
    drawn = graph(toy.backend.store, toy.backend.ws, result.run_id)
    assert not drawn["complete"]
    assert [n["label"] for n in drawn["nodes"]] == ["a", "b", "c"]


def test_runs_from_before_versions_were_recorded_get_theirs_on_upgrade(toy):
    backend = toy.backend
    backend.build([toy.pipeline()], plan=False)
    backend.publish([toy.pipeline()], plan=False)
    by_deploy = backend.run(toy.pipeline())
    by_endpoint, _, _ = LocalService(backend.ws.root).submit("toy", "0", {}, {"type": "HTTP"})
    backend.close()
    with sqlite3.connect(backend.ws.db_path) as db:  # as a workspace of schema version 3 was
        db.execute("UPDATE runs SET pipeline_version = NULL")
        db.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    store = Store(backend.ws.db_path)
    try:
        found = dict(store.all("SELECT run_id, pipeline_version FROM runs"))
    finally:
        store.close()
    assert found == {by_deploy.run_id: 1, by_endpoint: 1}
