"""The local workspace's always-on side: published pipelines run on request and on schedule.

Worker threads (``max_concurrent_runs`` of them, by default one per core) run submitted runs
in submission order, several side by side; a run waits as Queued while all are busy, as on a
busy AML cluster. Every run's step processes share one pool of slots (one per core), so runs
side by side never start more step processes than the machine has cores.

The scheduler thread wakes every second: a recurrence fires once when a fire time has passed
since the service last looked, and a datastore trigger fires one run per file added or
changed directly in its folder. Fire times that passed while no service was running are
skipped, not replayed.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from amlops.backends.local import endpoints
from amlops.backends.local.runner import QUEUED, Cancellation, Runner, RunRequest
from amlops.backends.local.schedules import (
    ACTIVE,
    blob_signatures,
    recurrence_of,
    trigger_of,
    watched_folder,
)
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import LocalWorkspace
from amlops.recurrence import anchor_of, fires_between

TICK_S = 1.0


class LocalService:
    """Submits runs of published pipelines and fires schedules on one local workspace."""

    def __init__(
        self,
        root: Path,
        *,
        poll_seconds: float | None = None,
        log: TextIO | None = None,
        clock=time.time,
        max_concurrent_runs: int | None = None,
        step_slots: int | None = None,
    ):
        self.ws = LocalWorkspace(root)
        cores = os.cpu_count() or 1
        self.max_concurrent_runs = max_concurrent_runs or cores
        self.step_slots = threading.BoundedSemaphore(step_slots or cores)
        self.poll_seconds = poll_seconds  # None: each trigger's polling_interval, in minutes
        self.log = log or sys.stderr
        self.clock = clock
        self.started = clock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._looked: dict[str, float] = {}  # schedule id -> when the scheduler last looked
        self._stop = threading.Event()
        self._running: set[Cancellation] = set()  # one per run in progress
        self._canceling = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A connection for the calling thread: SQLite connections stay in their thread."""
        store = self.ws.open_store()
        try:
            yield store
        finally:
            store.close()

    # --- submitting ----------------------------------------------------------------------------

    def submit(
        self,
        endpoint: str,
        version: str | None,
        parameters: Mapping[str, Any],
        origin: dict[str, Any],
        describe: Callable[[Store, str], Any] | None = None,
    ) -> tuple[str, str, Any]:
        """Queue a run of an endpoint's version (default: its default); (run id, version, and
        what ``describe(store, run_id)`` says of the run while it is still queued)."""
        with self.store() as store:
            pipeline, version = endpoints.published(self.ws, store, endpoint, version)
            origin = {**origin, "endpoint": endpoint, "version": version}
            request = RunRequest(
                pipeline, dict(parameters), tags=_tags(origin), experiment=origin.get("experiment")
            )
            run_id = Runner(self.ws, store, self.log).submit(request, origin)
            # Before a worker can take it: the answer shows the run as queued, always.
            described = describe(store, run_id) if describe else None
        self._queue.put(run_id)
        self.say(f"queued {run_id} ({origin['type']}: {endpoint} v{version})")
        return run_id, version, described

    def _execute(self, run_id: str) -> None:
        with self.store() as store:
            row = store.one("SELECT * FROM runs WHERE run_id=?", (run_id,))
            if row is None or row["status"] != QUEUED:
                return
            origin = json.loads(row["origin"])
            pipeline, _ = endpoints.published(self.ws, store, origin["endpoint"], origin["version"])
            request = RunRequest(
                pipeline,
                json.loads(row["parameters"]),
                tags=_tags(origin),
                experiment=origin.get("experiment"),
            )
            # Each run its own cancellation: a run that breaks stops its own steps only.
            with self._cancellation() as cancel:
                runner = Runner(self.ws, store, self.log, cancel, step_slots=self.step_slots)
                result = runner.execute(run_id, request)
        self.say(f"run {run_id}: {result.status}")

    @contextmanager
    def _cancellation(self) -> Iterator[Cancellation]:
        cancel = Cancellation()
        with self._lock:
            if self._canceling.is_set():
                cancel.set()
            self._running.add(cancel)
        try:
            yield cancel
        finally:
            with self._lock:
                self._running.discard(cancel)

    def _work(self) -> None:
        while (run_id := self._queue.get()) is not None:
            if self._canceling.is_set():
                return  # stopping: what is still queued waits for the next start
            try:
                self._execute(run_id)
            except KeyboardInterrupt:
                self.say(f"run {run_id}: Canceled (the service is stopping)")
                return
            except Exception as exc:  # one bad run must not stop the service
                self.say(f"run {run_id}: could not run: {type(exc).__name__}: {exc}")

    # --- scheduling ----------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[str]:
        """Fire every schedule that is due at ``now``; the run ids it queued."""
        now = self.clock() if now is None else now
        with self.store() as store:
            rows = store.all("SELECT * FROM schedules WHERE status=?", (ACTIVE,))
        queued = []
        for row in rows:
            try:
                queued += self._fire_recurrence(row, now) if recurrence_of(row) else []
                queued += self._fire_trigger(row, now) if trigger_of(row) else []
            except Exception as exc:  # a schedule whose runs cannot start is reported, not fatal
                self.say(f"schedule {row['name']}: could not fire: {exc}")
        return queued

    def _fire_recurrence(self, row, now: float) -> list[str]:
        rec = recurrence_of(row)
        assert rec is not None
        since = self._looked.get(row["id"], max(self.started, row["updated_at"]))
        self._looked[row["id"]] = now
        created = datetime.fromtimestamp(row["created_at"], UTC)
        fires = fires_between(
            rec,
            datetime.fromtimestamp(since, UTC),
            datetime.fromtimestamp(now, UTC),
            anchor_of(rec, created),
        )
        if not fires:
            return []
        # Several fire times in one look means the service was paused: run once, not N times.
        return [self._fire(row, dict(json.loads(row["definition"])["parameters"]), now)]

    def _fire_trigger(self, row, now: float) -> list[str]:
        trig = trigger_of(row)
        assert trig is not None
        interval = trig.polling_interval * 60 if self.poll_seconds is None else self.poll_seconds
        last = self._looked.get(row["id"])
        if last is not None and now - last < interval:
            return []
        self._looked[row["id"]] = now
        with self.store() as store:
            known = {
                r["path"]: r["signature"]
                for r in store.all("SELECT * FROM schedule_blobs WHERE schedule_id=?", (row["id"],))
            }
        seen = blob_signatures(watched_folder(self.ws, trig))
        queued = []
        for name in sorted(seen):
            if known.get(name) == seen[name]:
                continue
            parameters = dict(json.loads(row["definition"])["parameters"])
            if trig.data_path_parameter:
                parameters[trig.data_path_parameter] = trig.blob_path(name)
            # Recorded before the run starts: a blob fires once, even if its run fails.
            with self.store() as store, store.transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO schedule_blobs VALUES (?, ?, ?)",
                    (row["id"], name, seen[name]),
                )
            queued.append(self._fire(row, parameters, now, blob=name))
        gone = set(known) - set(seen)
        if gone:
            with self.store() as store, store.transaction() as db:
                db.executemany(
                    "DELETE FROM schedule_blobs WHERE schedule_id=? AND path=?",
                    [(row["id"], name) for name in gone],
                )
        return queued

    def _fire(self, row, parameters: dict[str, Any], now: float, **detail: str) -> str:
        origin = {"type": "Schedule", "schedule": row["name"], "schedule_id": row["id"], **detail}
        run_id, _, _ = self.submit(row["endpoint"], None, parameters, origin)
        with self.store() as store, store.transaction() as db:
            db.execute(
                "UPDATE schedules SET last_fired=?, last_run_id=? WHERE id=?",
                (now, run_id, row["id"]),
            )
        return run_id

    def _schedule_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            self.tick()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self, *, schedules: bool = True) -> None:
        """Start the worker (and the scheduler); runs left Queued by an earlier service resume."""
        with self.store() as store:
            waiting = store.all(
                "SELECT run_id, origin FROM runs WHERE status=? ORDER BY created_at", (QUEUED,)
            )
        for row in waiting:
            if json.loads(row["origin"] or "{}").get("endpoint"):
                self._queue.put(row["run_id"])
        targets = [self._work] * self.max_concurrent_runs
        targets += [self._schedule_loop] if schedules else []
        for n, target in enumerate(targets):
            name = f"{target.__name__}-{n}"
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, *, cancel: bool = True) -> None:
        """Stop scheduling; cancel the runs in progress (queued runs wait for the next start),
        or with ``cancel=False`` finish every queued run first."""
        self._stop.set()
        if cancel:
            with self._lock:
                self._canceling.set()
                for running in self._running:
                    running.set()
        for _ in range(self.max_concurrent_runs):
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def say(self, line: str) -> None:
        with self._lock:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", file=self.log, flush=True)


def _tags(origin: Mapping[str, Any]) -> dict[str, str]:
    keys = ("type", "endpoint", "version", "schedule")
    return {f"run_{k}" if k == "type" else k: str(origin[k]) for k in keys if k in origin}
