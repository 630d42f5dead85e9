"""Runs on the real local backend with real step subprocesses: binding, reuse and failure."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amlops.backends.local.backend import LocalBackend
from amlops.backends.local.runner import Runner, RunRequest
from amlops.backends.local.store import Store
from amlops.config import DatasetConfig
from amlops.spec import DatasetInput, Output, ParallelStep, Pipeline, ScriptStep


def reused(result) -> dict[str, bool]:
    return {s.name: s.reused for s in result.steps}


def step_row(backend: LocalBackend, run_id: str, step: str):
    return backend.store.one("SELECT * FROM step_runs WHERE run_id=? AND step=?", (run_id, step))


def output_of(backend: LocalBackend, run_id: str, step: str, name: str) -> Path:
    return backend.ws.abs(json.loads(step_row(backend, run_id, step)["outputs"])[name])


def test_arguments_are_bound_as_aml_binds_them(toy):
    backend, pipeline = toy.backend, toy.pipeline
    result = backend.run(pipeline(), {"alpha": 0.75})
    assert result.status == "Completed"
    argv_b = json.loads((output_of(backend, result.run_id, "b", "ob") / "argv.json").read_text())
    bound = dict(zip(argv_b[::2], argv_b[1::2], strict=True))
    assert bound["--alpha"] == "0.75"  # Param -> its value, as a string
    assert Path(bound["--in_a"]) == output_of(backend, result.run_id, "a", "oa")  # producer's
    assert Path(bound["--out"]) == output_of(backend, result.run_id, "b", "ob")  # fresh folder
    argv_a = json.loads((output_of(backend, result.run_id, "a", "oa") / "argv.json").read_text())
    data = Path(dict(zip(argv_a[::2], argv_a[1::2], strict=True))["--in_data"])
    assert (data / "data.txt").read_text() == "rows v1"  # DatasetInput -> the version's files
    assert data.is_relative_to(backend.ws.root / "datastores")
    # the step ran from a snapshot of its folder, with its logs captured
    step_dir = backend.ws.runs / result.run_id / "b"
    assert (step_dir / "snapshot" / "main.py").exists()
    assert (step_dir / "stdout.txt").exists() and (step_dir / "stderr.txt").exists()


def test_second_run_reuses_every_step(toy):
    backend, pipeline = toy.backend, toy.pipeline
    first = backend.run(pipeline())
    second = backend.run(pipeline())
    assert reused(first) == {"a": False, "b": False, "c": False}
    assert reused(second) == {"a": True, "b": True, "c": True}
    assert {s.reused_from for s in second.steps} == {f"{first.run_id}/{n}" for n in "abc"}
    # downstream of a reused step reads the original outputs
    assert "rows v1" in (output_of(backend, second.run_id, "c", "oc") / "data.txt").read_text()


def test_changed_parameter_reruns_only_steps_that_depend_on_it(toy):
    backend, pipeline = toy.backend, toy.pipeline
    backend.run(pipeline())
    result = backend.run(pipeline(), {"alpha": 0.9})
    assert reused(result) == {"a": True, "b": False, "c": False}
    downstream = (output_of(backend, result.run_id, "c", "oc") / "data.txt").read_text()
    assert "0.9" in downstream  # c saw b's new output


def test_changed_step_source_reruns_that_step_and_downstream(toy):
    backend, pipeline, tmp_path = toy.backend, toy.pipeline, toy.root
    backend.run(pipeline())
    with open(tmp_path / "steps" / "b" / "main.py", "a") as fh:
        fh.write("# a harmless edit still changes the snapshot\n")
    assert reused(backend.run(pipeline())) == {"a": True, "b": False, "c": False}


def test_ignored_files_do_not_break_reuse(toy):
    backend, pipeline, tmp_path = toy.backend, toy.pipeline, toy.root
    backend.run(pipeline())
    folder = tmp_path / "steps" / "a"
    (folder / ".amlignore").write_text("notes.txt\n")
    (folder / "notes.txt").write_text("scratch")
    # adding .amlignore itself changes the snapshot once
    assert reused(backend.run(pipeline()))["a"] is False
    (folder / "notes.txt").write_text("more scratch")
    assert reused(backend.run(pipeline()))["a"] is True


def test_regenerate_outputs_runs_every_step(toy):
    backend, pipeline = toy.backend, toy.pipeline
    backend.run(pipeline())
    result = backend.run(pipeline(), regenerate_outputs=True)
    assert reused(result) == {"a": False, "b": False, "c": False}
    # and a plain run afterwards reuses again
    assert all(reused(backend.run(pipeline())).values())


def test_changed_environment_reruns_every_step_that_uses_it(toy):
    backend, pipeline, environment = toy.backend, toy.pipeline, toy.environment
    backend.run(pipeline())
    environment.conda_file.write_text("dependencies: [python=3.11, numpy]\n")
    changes = backend.register_environments([environment], plan=False)
    assert [(c.action, c.version) for c in changes] == [("updated", "2")]
    assert reused(backend.run(pipeline())) == {"a": False, "b": False, "c": False}


def test_changed_dataset_content_gets_a_new_version_and_reruns_from_prep(toy):
    backend, pipeline, tmp_path, dataset = toy.backend, toy.pipeline, toy.root, toy.dataset
    backend.run(pipeline())
    unchanged = backend.register_datasets([dataset], plan=False)
    assert [(c.action, c.version) for c in unchanged] == [("unchanged", "1")]
    (tmp_path / "data" / "data.txt").write_text("rows v2")
    changed = backend.register_datasets([dataset], plan=False)
    assert [(c.action, c.version) for c in changed] == [("updated", "2")]
    result = backend.run(pipeline())
    assert reused(result) == {"a": False, "b": False, "c": False}
    assert "rows v2" in (output_of(backend, result.run_id, "c", "oc") / "data.txt").read_text()
    # version 1 is still there, unchanged
    v1 = backend.store.asset("dataset", "toy-data", 1)
    assert (backend.ws.abs(v1["path"]) / "data.txt").read_text() == "rows v1"


def test_failing_step_fails_the_run_and_stops_downstream(toy):
    backend, pipeline = toy.backend, toy.pipeline
    result = backend.run(pipeline(fail_in="b"))
    assert result.status == "Failed"
    statuses = {s.name: s.status for s in result.steps}
    assert statuses == {"a": "Completed", "b": "Failed", "c": "NotStarted"}
    assert "step 'b' failed (exit code 3)" in result.error
    assert "something broke in main.py" in result.error  # the tail of the step's log
    run = backend.store.one("SELECT * FROM runs WHERE run_id=?", (result.run_id,))
    assert run["status"] == "Failed" and run["end_time"] is not None
    assert step_row(backend, result.run_id, "b")["exit_code"] == 3
    # a failed step is never reused: the fixed pipeline reruns b
    assert reused(backend.run(pipeline())) == {"a": True, "b": False, "c": False}


def test_plan_says_what_a_run_would_reuse_and_writes_nothing(toy):
    backend, pipeline = toy.backend, toy.pipeline
    backend.run(pipeline())
    runs_before = backend.store.one("SELECT COUNT(*) AS n FROM runs")["n"]
    plan = {d.name: d for d in backend.plan_run(pipeline(), {"alpha": 0.1})}
    assert plan["a"].reuses is not None and plan["b"].reuses is None and plan["c"].reuses is None
    assert plan["b"].why == ("parameter alpha: 0.5 -> 0.1",)
    assert plan["c"].why == ("output ob of step b: changed",)
    assert backend.store.one("SELECT COUNT(*) AS n FROM runs")["n"] == runs_before


def test_a_step_that_runs_says_why(toy):
    """What changed since the last run of the step: code, a dataset version, parameters."""
    backend, pipeline, root = toy.backend, toy.pipeline, toy.root
    first = backend.run(pipeline())
    assert {s.name: s.why for s in first.steps}["a"] == ("no earlier run of this step",)
    (root / "steps" / "b" / "main.py").write_text(
        (root / "steps" / "b" / "main.py").read_text() + "# tuned\n"
    )
    (root / "steps" / "b" / "helper.py").write_text("X = 1\n")
    (toy.dataset.path / "data.txt").write_text("rows v2")
    backend.register_datasets([toy.dataset], plan=False)
    second = {s.name: s for s in backend.run(pipeline(), {"seed": 2}).steps}
    assert set(second["a"].why) == {"parameter seed: 1 -> 2", "dataset toy-data: v1 -> v2"}
    assert second["b"].why == (
        "code: helper.py added, main.py changed",
        "output oa of step a: changed",
    )
    row = backend.store.one(
        "SELECT why FROM step_runs s JOIN runs r USING (run_id) WHERE s.step='a'"
        " ORDER BY r.created_at DESC LIMIT 1"
    )
    assert json.loads(row["why"]) == list(second["a"].why)
    third = {s.name: s for s in backend.run(pipeline(), {"seed": 2}).steps}
    assert third["a"].reused and third["a"].why[0].startswith("nothing it depends on changed")


def test_reuse_needs_the_original_outputs_to_still_exist(toy):
    import shutil

    backend, pipeline = toy.backend, toy.pipeline
    first = backend.run(pipeline())
    shutil.rmtree(backend.ws.runs / first.run_id)
    assert reused(backend.run(pipeline())) == {"a": False, "b": False, "c": False}


def test_missing_data_is_refused_before_a_run_exists(toy):
    from amlops.errors import ConfigError
    from amlops.spec import DataPathParam

    backend, tmp_path = toy.backend, toy.root
    step = ScriptStep(
        name="read",
        source_dir=tmp_path / "steps" / "a",
        script="main.py",
        arguments=["--in_x", DataPathParam("incoming", "workspaceblobstore", "nowhere"),
                   "--out", Output("o")],
    )  # fmt: skip
    with pytest.raises(ConfigError, match="parameter 'incoming': workspaceblobstore/nowhere"):
        backend.run(Pipeline("reader", [step]))
    assert backend.store.one("SELECT COUNT(*) AS n FROM runs")["n"] == 0


def test_uploading_a_dataset_overwrites_its_files_and_leaves_other_files_alone(toy):
    """As Azure's upload does: new data a user dropped next to the upload survives a deploy."""
    backend, dataset = toy.backend, toy.dataset
    uploaded = DatasetConfig(
        name="drop", kind="file", path=dataset.path, datastore="workspaceblobstore",
        datastore_path="incoming", upload=True,
    )  # fmt: skip
    backend.register_datasets([uploaded], plan=False)
    folder = backend.ws.datastore("workspaceblobstore") / "incoming"
    assert (folder / "data.txt").read_text() == "rows v1"
    (folder / "dropped.txt").write_text("a user's new rows")
    (dataset.path / "data.txt").write_text("rows v2")
    [change] = backend.register_datasets([uploaded], plan=False)
    assert (change.action, change.version) == ("updated", "2")
    assert (folder / "data.txt").read_text() == "rows v2"
    assert (folder / "dropped.txt").read_text() == "a user's new rows"
    assert sorted(p.name for p in folder.iterdir()) == ["data.txt", "dropped.txt"]


MEET_SCRIPT = """\
import sys, time
from pathlib import Path

me, other, meet, fail = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "yes"
(meet / me).touch()
if fail:
    sys.exit(4)
deadline = time.monotonic() + 120
while not (meet / other).exists():  # only a step running at the same time can create it
    if time.monotonic() > deadline:
        sys.exit(f"{me}: {other} never ran alongside")
    time.sleep(0.05)
out = Path(sys.argv[sys.argv.index("--out") + 1])
(out / "done").write_text(me)
"""


def fan_out(tmp_path: Path, fail: str = "") -> Pipeline:
    """split -> (left, right) -> join, where left and right each wait to meet the other."""
    folder = tmp_path / "steps" / "meet"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(MEET_SCRIPT)
    meet = tmp_path / "meet"
    meet.mkdir(exist_ok=True)
    split, left, right, join = Output("split"), Output("left"), Output("right"), Output("join")

    def step(name, *args):
        return ScriptStep(name, folder, arguments=list(args), allow_reuse=False)

    return Pipeline(
        "fan_out",
        [
            ScriptStep("split", tmp_path / "steps" / "a", arguments=["--out", split]),
            step("left", "left", "right", str(meet), "yes" if fail == "left" else "no",
                 "--in", split.as_input(), "--out", left),
            step("right", "right", "left", str(meet), "no", "--in", split.as_input(),
                 "--out", right),
            step("join", "join", "join", str(meet), "no", "--a", left.as_input(),
                 "--b", right.as_input(), "--out", join),
        ],
    )  # fmt: skip


def test_independent_steps_run_side_by_side_as_on_azure_ml(toy):
    backend, tmp_path = toy.backend, toy.root
    runner = Runner(backend.ws, backend.store, max_parallel_steps=2)
    result = runner.run(RunRequest(fan_out(tmp_path), {}))
    assert result.status == "Completed", result.error
    assert [s.status for s in result.steps] == ["Completed"] * 4


def test_after_a_failure_running_steps_finish_and_nothing_new_starts(toy):
    backend, tmp_path = toy.backend, toy.root
    runner = Runner(backend.ws, backend.store, max_parallel_steps=2)
    result = runner.run(RunRequest(fan_out(tmp_path, fail="left"), {}))
    assert result.status == "Failed"
    assert result.error.startswith("step 'left' failed (exit code 4)")
    statuses = {s.name: s.status for s in result.steps}
    assert statuses == {
        "split": "Completed", "left": "Failed", "right": "Completed", "join": "NotStarted",
    }  # fmt: skip


# Ctrl-C as a terminal delivers it: a test run started in the background of a shell inherits
# SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
CTRL_C_SCRIPT = """\
import signal
import sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from amlops.backends.local.backend import LocalBackend
from amlops.spec import DatasetInput, Output, ParallelStep, Pipeline, ScriptStep

root = Path(sys.argv[1])
step = ScriptStep("nap", root / "nap", arguments=["--out", Output("o")])
LocalBackend(root / "ws").run(Pipeline("napping", [step]))
"""


def test_ctrl_c_cancels_the_run_and_stops_its_step_processes(tmp_path):
    (tmp_path / "nap").mkdir()
    (tmp_path / "nap" / "main.py").write_text(
        "import os, time\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path)])
    pid_file = tmp_path / "pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "the step never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) != 0
    with sqlite3.connect(tmp_path / "ws" / "metadata.db") as db:
        assert db.execute("SELECT status, error FROM runs").fetchone() == (
            "Canceled",
            "canceled by the user",
        )
        assert db.execute("SELECT status FROM step_runs").fetchone() == ("Canceled",)
    step_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(step_pid):
        assert time.monotonic() < deadline, "the step process outlived its canceled run"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_branches_finishing_together_hand_each_consumer_its_own_outputs(toy):
    """Four branches that end at the same moment, then a join reading all four: the shared run
    state is written while other threads read it. Repeated, since a race shows up rarely."""
    backend, tmp_path = toy.backend, toy.root
    branches = [f"b{i}" for i in range(4)]
    outs = {name: Output(name) for name in branches}
    root = Output("root")
    pipeline = Pipeline(
        "wide",
        [
            ScriptStep("root", tmp_path / "steps" / "a", arguments=["--out", root]),
            *(
                ScriptStep(name, tmp_path / "steps" / "b", allow_reuse=False,
                           arguments=["--in_root", root.as_input(), "--who", name,
                                      "--out", outs[name]])
                for name in branches
            ),
            ScriptStep("join", tmp_path / "steps" / "c", allow_reuse=False,
                       arguments=[*(x for n in branches for x in (f"--in_{n}", outs[n].as_input())),
                                  "--out", Output("joined")]),
        ],
    )  # fmt: skip
    runner = Runner(backend.ws, backend.store, max_parallel_steps=4)
    for _ in range(6):
        result = runner.run(RunRequest(pipeline, {}))
        assert result.status == "Completed", result.error
        joined = json.loads((output_of(backend, result.run_id, "join", "joined") / "data.txt")
                            .read_text())  # fmt: skip
        for name in branches:
            assert json.loads(joined[f"--in_{name}"])["--who"] == name
            assert output_of(backend, result.run_id, name, name).is_relative_to(
                backend.ws.runs / result.run_id
            )


def test_a_failed_step_names_the_exception_and_where_its_traceback_is(toy):
    backend, root = toy.backend, toy.root
    folder = root / "steps" / "broken"
    folder.mkdir()
    (folder / "main.py").write_text(
        "import logging\n"
        "logging.warning('starting')\n"
        "columns = {'id': 1}\n"
        "print(columns['row_id'])\n"
    )
    result = backend.run(Pipeline("broken", [ScriptStep("s", folder)]))
    assert result.status == "Failed"
    first = result.error.splitlines()[0]
    stderr = backend.ws.runs / result.run_id / "s" / "stderr.txt"
    assert first == f"step 's' failed (exit code 1): KeyError: 'row_id' (traceback in {stderr}:2)"


def test_a_parallel_step_failing_in_init_names_the_real_exception(toy):
    """Not the driver's closing 'init() failed': the entry script's own exception."""
    backend, root = toy.backend, toy.root
    folder = root / "steps" / "score"
    folder.mkdir()
    (folder / "score.py").write_text(
        "def init():\n"
        "    raise LookupError('Registered Model with name=m not found')\n\n"
        "def run(batch):\n"
        "    return batch\n"
    )
    step = ParallelStep(
        "score", folder, inputs=[DatasetInput("toy-data")], output=Output("o"),
        process_count_per_node=1,
    )  # fmt: skip
    result = backend.run(Pipeline("scoring", [step]))
    assert result.status == "Failed"
    first = result.error.splitlines()[0]
    assert first.startswith(
        "step 'score' failed (exit code 1): LookupError: Registered Model with name=m not found"
    ), result.error


def test_a_running_step_s_output_reaches_the_terminal_as_it_is_written(toy):
    """The lines show before the step ends, prefixed with its name; the logs keep them too."""
    import io
    import threading

    backend, root = toy.backend, toy.root
    folder = root / "steps" / "talk"
    folder.mkdir()
    gate = root / "gate"
    (folder / "main.py").write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "print('first line', flush=True)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        f"while not Path({str(gate)!r}).exists():\n"
        "    time.sleep(0.05)\n"
        "print('last, no newline', end='')\n"
    )
    progress = io.StringIO()
    done: list = []

    def run() -> None:  # in a thread of its own, with its own connection, as serve does
        store = Store(backend.store.path)
        request = RunRequest(Pipeline("talk", [ScriptStep("t", folder)]), {})
        done.append(Runner(backend.ws, store, progress).run(request))
        store.close()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while "  t | to stderr" not in progress.getvalue():
        assert time.monotonic() < deadline, progress.getvalue()
        time.sleep(0.05)
    assert "  t | first line" in progress.getvalue() and not done  # still running
    gate.touch()
    thread.join(timeout=60)
    assert done[0].status == "Completed"
    assert "  t | last, no newline\n" in progress.getvalue()


@pytest.mark.parametrize(("user", "seen"), [(None, "true"), ("false", "false")])
def test_mlflow_telemetry_is_off_in_steps_unless_the_user_turns_it_on(toy, monkeypatch, user, seen):
    backend, root = toy.backend, toy.root
    if user is None:
        monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", user)
    folder = root / "steps" / "env"
    folder.mkdir()
    (folder / "main.py").write_text(
        "import os, sys\nfrom pathlib import Path\n"
        "Path(sys.argv[2], 'seen').write_text(os.environ['MLFLOW_DISABLE_TELEMETRY'])\n"
    )
    step = ScriptStep("env", folder, arguments=["--out", Output("o")], allow_reuse=False)
    result = backend.run(Pipeline("env", [step]))
    assert (output_of(backend, result.run_id, "env", "o") / "seen").read_text() == seen
