"""Many processes opening one fresh workspace database at the same moment."""

import multiprocessing
from pathlib import Path

from amlops.backends.local.store import Store


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
