"""`amlops runs logs`: a run's step logs, and following them while the run goes on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from amlops.spec import Output, Pipeline, ScriptStep

CHATTY = """\
import sys, time
for i in range(3):
    print(f"line {i}", flush=True)
    time.sleep(0.5)
print("a warning", file=sys.stderr, flush=True)
"""

RUN = """\
import sys
from pathlib import Path

from amlops.spec import Output, Pipeline, ScriptStep
from amlops.backends.local.backend import LocalBackend
from amlops.spec import Output, Pipeline, ScriptStep

root = Path(sys.argv[1])
step = ScriptStep("talk", root / "steps" / "talk", arguments=["--out", Output("o")])
LocalBackend(root / "ws").run(Pipeline("chatty", [step]))
"""


def amlops(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "amlops.cli", *args, "--root", str(root)],
        capture_output=True, text=True, timeout=120, **kw,
    )  # fmt: skip


def test_logs_of_a_run_and_of_one_step(toy):
    root = toy.root
    (root / "config").mkdir()
    (root / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    result = toy.backend.run(toy.pipeline(fail_in="b"))
    proc = amlops(root, "runs", "logs", result.run_id)
    assert proc.returncode == 0, proc.stderr
    assert "==> b/stderr.txt <==\nsomething broke in main.py" in proc.stdout
    one = amlops(root, "runs", "logs", result.run_id, "b").stdout
    assert one.startswith("==> b/") and "==> a/" not in one
    bad = amlops(root, "runs", "logs", result.run_id, "ghost")
    assert bad.returncode == 2 and "has no step 'ghost' (steps: a, b, c)" in bad.stderr


def test_follow_prints_lines_as_a_running_step_writes_them(toy):
    root = toy.root
    (root / "config").mkdir()
    (root / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    (root / "steps" / "talk").mkdir()
    (root / "steps" / "talk" / "main.py").write_text(CHATTY)
    with open(root / "run.log", "w") as log:
        running = subprocess.Popen([sys.executable, "-c", RUN, str(root)], stderr=log)
    try:
        deadline = time.monotonic() + 180  # the run's process imports before it submits
        while not (row := toy.backend.store.one("SELECT run_id FROM runs WHERE pipeline='chatty'")):
            assert time.monotonic() < deadline and running.poll() is None, "the run never started"
            time.sleep(0.05)
        run_id = row[0]
        follow = subprocess.Popen(
            [sys.executable, "-m", "amlops.cli", "runs", "logs", run_id, "--follow",
             "--root", str(root)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        out, _ = follow.communicate(timeout=60)
    finally:
        running.wait(timeout=60)
    assert follow.returncode == 0
    assert out.splitlines() == [
        "==> talk/stdout.txt <==", "line 0", "line 1", "line 2",
        "==> talk/stderr.txt <==", "a warning",
    ]  # fmt: skip


def test_a_reused_step_shows_the_logs_of_the_run_it_reused(toy):
    root = toy.root
    (root / "config").mkdir()
    (root / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    (root / "steps" / "talk").mkdir()
    (root / "steps" / "talk" / "main.py").write_text(CHATTY)
    talk = Pipeline(
        "chatty", [ScriptStep("talk", root / "steps" / "talk", arguments=["--out", Output("o")])]
    )
    first = toy.backend.run(talk)
    second = toy.backend.run(talk)
    assert second.steps[0].reused
    proc = amlops(root, "runs", "logs", second.run_id, "talk")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"==> talk/stdout.txt (reused from {first.run_id}/talk) <==\n")
    assert "line 2" in proc.stdout
