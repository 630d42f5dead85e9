"""The notebook API: Workspace.from_config, submit, wait_for_completion, metrics, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlops import Workspace
from amlops.errors import ConfigError
from amlops.runtime import PIPELINE_RUN_TAG, mlflow_client

PIPELINE = """
from pathlib import Path

from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep

HERE = Path(__file__).parent


def build(cfg, compute):
    fit = ScriptStep(
        "fit", HERE / "steps" / "fit",
        arguments=["--data", DatasetInput("toy-data"), "--alpha", Param("alpha", 0.5),
                   "--out", Output("model")],
    )
    return Pipeline("fitting", [fit])
"""

FIT = """\
import sys
from pathlib import Path
from amlops.runtime import mlflow_run

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
text = (Path(args["--data"]) / "data.txt").read_text()
print("fitting on", text)
(Path(args["--out"]) / "model.txt").write_text(f"alpha={args['--alpha']}")
with mlflow_run():
    import mlflow
    mlflow.log_metric("r2", float(args["--alpha"]) / 2)
"""


@pytest.fixture
def repo(toy) -> Path:
    root = toy.root
    (root / "pipelines" / "steps" / "fit").mkdir(parents=True)
    (root / "pipelines" / "fitting.py").write_text(PIPELINE)
    (root / "pipelines" / "steps" / "fit" / "main.py").write_text(FIT)
    (root / "config").mkdir()
    (root / "config" / "local.yml").write_text(
        "workspace:\n  path: ws\n"
        "datasets:\n  toy-data:\n    kind: file\n    path: data\n"
        "pipelines:\n  fitting: {}\n"
    )
    return root


def test_submit_wait_metrics_and_outputs(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo / "pipelines")  # from_config looks upwards for config/
    ws = Workspace.from_config()
    assert ws.pipelines == ["fitting"]
    run = ws.submit("fitting", parameters={"alpha": 0.8})
    assert run.get_status() in ("Queued", "Running", "Completed")
    assert run.wait_for_completion(show_output=True, timeout=300) == "Completed"
    shown = capsys.readouterr().out
    assert "fit | fitting on rows v1" in shown and f"run {run.id}: Completed" in shown
    assert run.get_metrics() == {"fit": {"r2": 0.4}}
    model = run.outputs["fit"]["model"]
    assert (model / "model.txt").read_text() == "alpha=0.8"
    again = ws.submit("fitting", parameters={"alpha": 0.8})
    assert again.wait_for_completion(timeout=300) == "Completed"
    assert again.get_metrics() == {"fit": {"r2": 0.4}}  # a reused step's, from its original
    # Waiting includes MLflow: the run, every step reused, is already ended there.
    client = mlflow_client(repo / "ws" / "mlflow.lock", f"sqlite:///{repo / 'ws' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    where = f"tags.`{PIPELINE_RUN_TAG}` = '{again.id}' AND tags.`amlops.kind` = 'pipeline'"
    (pipeline_run,) = client.search_runs(experiments, filter_string=where)
    assert pipeline_run.info.status == "FINISHED"
    assert pipeline_run.data.tags["amlops.reused_steps"] == "fit"
    assert ws.get_run(run.id).get_status() == "Completed"
    row = json.loads((repo / "ws" / "runs" / run.id / "fit" / "command.json").read_text())
    assert row[row.index("--alpha") + 1] == "0.8"


def test_bad_input_is_refused_before_a_run_exists(repo):
    ws = Workspace.from_config(path=repo)
    with pytest.raises(ConfigError, match="no pipeline 'ghost'"):
        ws.submit("ghost")
    with pytest.raises(Exception, match="has no parameter 'beta'"):
        ws.submit("fitting", parameters={"beta": 1})
    assert not any((repo / "ws" / "runs").iterdir())
