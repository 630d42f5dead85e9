"""Each local pipeline run is an MLflow run: made when it starts, its parameters logged, each
step's run nested under it, reused steps marked, ended with the pipeline's real status."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import mlflow

from amlops.backends.local.mlflow_record import (
    REUSED_FROM_TAG,
    REUSED_MLFLOW_RUN_TAG,
    REUSED_STEPS_TAG,
    wait_for_records,
)
from amlops.runtime import PIPELINE_RUN_TAG, mlflow_client
from amlops.spec import Output, Param, Pipeline, ScriptStep


def _client(toy) -> mlflow.MlflowClient:
    ws = toy.backend.ws
    return mlflow_client(ws.mlflow_lock, ws.mlflow_uri)  # not while a run creates the tables


def _runs(client, where: str):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=where)


def _pipeline_run(toy, run_id: str):
    """The pipeline run's MLflow run, once its record has finished: that is after the run
    returns (the runner does not wait for mlflow's import)."""
    wait_for_records(toy.backend.ws.mlflow_records)
    where = f"tags.`{PIPELINE_RUN_TAG}` = '{run_id}' AND tags.`amlops.kind` = 'pipeline'"
    (run,) = _runs(_client(toy), where)
    return run


def _nested(client, parent) -> dict[str, object]:
    children = _runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {c.info.run_name: c for c in children}


def _times(toy, run_id: str) -> tuple[int, int]:
    row = toy.backend.store.one("SELECT start_time, end_time FROM runs WHERE run_id=?", (run_id,))
    return int(row["start_time"] * 1000), int(row["end_time"] * 1000)


def test_a_pipeline_run_is_an_mlflow_run_with_its_parameters_and_nested_steps(toy):
    result = toy.backend.run(toy.pipeline(), {"seed": 7})
    client = _client(toy)

    parent = _pipeline_run(toy, result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"seed": "7", "alpha": "0.5"}
    assert parent.data.tags["amlops.pipeline"] == "toy"
    assert parent.info.experiment_id == client.get_experiment_by_name("toy").experiment_id
    start, end = _times(toy, result.run_id)
    assert parent.info.end_time == end  # the pipeline's own end, not the record's
    assert parent.info.start_time >= start - 1000  # made as the run started

    steps = _nested(client, parent)
    assert set(steps) == {"a", "b", "c"}
    assert {s.info.status for s in steps.values()} == {"FINISHED"}


def test_a_failed_pipeline_ends_its_mlflow_run_failed(toy):
    result = toy.backend.run(toy.pipeline(fail_in="b"))
    assert result.status == "Failed"
    client = _client(toy)

    parent = _pipeline_run(toy, result.run_id)
    assert parent.info.status == "FAILED"
    assert parent.info.end_time == _times(toy, result.run_id)[1]
    steps = _nested(client, parent)
    assert {name: s.info.status for name, s in steps.items()} == {"a": "FINISHED", "b": "FAILED"}


def test_reused_steps_are_marked_and_point_at_the_run_they_reused(toy):
    first = toy.backend.run(toy.pipeline())
    second = toy.backend.run(toy.pipeline())
    assert all(s.reused for s in second.steps)
    client = _client(toy)

    original = _nested(client, _pipeline_run(toy, first.run_id))
    parent = _pipeline_run(toy, second.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[REUSED_STEPS_TAG] == "a,b,c"
    for name, run in _nested(client, parent).items():
        assert run.data.tags["amlops.kind"] == "reused"
        assert run.data.tags[REUSED_FROM_TAG] == f"{first.run_id}/{name}"
        assert run.data.tags[REUSED_MLFLOW_RUN_TAG] == original[name].info.run_id


MLFLOW_STEP = """\
import sys
from pathlib import Path

import mlflow
from amlops.runtime import mlflow_run

with mlflow_run():
    mlflow.log_metric("rows", 3)
(Path(sys.argv[1]) / "data.txt").write_text("ok")
"""


def test_a_step_that_logs_to_mlflow_is_the_nested_run_itself(toy):
    folder = toy.root / "steps" / "logs"
    folder.mkdir()
    (folder / "main.py").write_text(MLFLOW_STEP)
    out = Output("out")
    pipeline = Pipeline(
        "logs",
        [ScriptStep(name="fit", source_dir=folder, script="main.py", arguments=[out]),
         ScriptStep(name="after", source_dir=toy.root / "steps" / "c", script="main.py",
                    arguments=["--in_b", out.as_input(), "--k", Param("k", 2),
                               "--out", Output("o2")])],
    )  # fmt: skip
    result = toy.backend.run(pipeline)
    assert result.status == "Completed", result.error
    client = _client(toy)

    parent = _pipeline_run(toy, result.run_id)
    steps = _nested(client, parent)
    assert set(steps) == {"fit", "after"}  # one run per step: the record reused fit's own
    assert steps["fit"].data.metrics == {"rows": 3.0}
    assert parent.data.params == {"k": "2"}
    assert len(_runs(client, f"tags.`{PIPELINE_RUN_TAG}` = '{result.run_id}'")) == 3


def test_the_runner_itself_never_imports_mlflow(toy):
    code = textwrap.dedent(
        f"""
        import io, sys
        sys.path.insert(0, {str(toy.root.parent)!r})
        from pathlib import Path
        from amlops.backends.local.backend import LocalBackend
        from amlops.spec import Output, Pipeline, ScriptStep
        step = ScriptStep(name="a", source_dir=Path({str(toy.root / "steps" / "c")!r}),
                          script="main.py", arguments=["--out", Output("o")])
        result = LocalBackend(Path({str(toy.backend.ws.root)!r}), progress=io.StringIO()).run(
            Pipeline("light", [step]))
        assert result.status == "Completed", result.error
        print("mlflow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    run_id = toy.backend.store.one("SELECT run_id FROM runs WHERE pipeline='light'")["run_id"]
    assert _pipeline_run(toy, run_id).info.status == "FINISHED"  # recorded all the same


def test_a_run_records_the_built_pipeline_version_it_ran(toy):
    pipeline = toy.pipeline()
    toy.backend.build([pipeline], plan=False)
    result = toy.backend.run(pipeline)
    row = toy.backend.store.one(
        "SELECT pipeline_version FROM runs WHERE run_id=?", (result.run_id,)
    )
    assert row["pipeline_version"] == 1
    assert _pipeline_run(toy, result.run_id).data.tags["amlops.pipeline_version"] == "1"
