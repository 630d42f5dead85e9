"""SweepStep and AutoMLStep on the local workspace: real trial subprocesses, real MLflow, FLAML."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from amlops.backends.local.backend import LocalBackend
from amlops.config import DatasetConfig
from amlops.spec import (
    AutoMLStep,
    EarlyTermination,
    Output,
    Pipeline,
    ScriptStep,
    SearchParam,
    SweepStep,
)

# A trial: logs "score" (higher is better: peaks at x=0.3) once per epoch through MLflow, and
# writes its x to its output folder.
TRIAL = """
import argparse, time
from pathlib import Path
from amlops.runtime import mlflow_run
p = argparse.ArgumentParser()
p.add_argument("--out", type=Path)
p.add_argument("--x", type=float)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--pause", type=float, default=0.0)
a = p.parse_args()
with mlflow_run():
    import mlflow
    for epoch in range(1, a.epochs + 1):
        mlflow.log_metric("score", -((a.x - 0.3) ** 2) * epoch, step=epoch)
        time.sleep(a.pause)
(a.out / "x.txt").write_text(str(a.x))
"""


def trial_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "trial"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text(TRIAL)
    return folder


def test_a_sweep_runs_its_trials_keeps_the_best_and_is_reused(tmp_path):
    backend = LocalBackend(tmp_path / "ws")
    best_x, metrics = Output("best_x"), Output("metrics")

    def pipeline(values=(0.0, 0.3, 0.9)):
        return Pipeline(
            "sweep-toy",
            [
                SweepStep(
                    name="sweep",
                    source_dir=trial_folder(tmp_path),
                    arguments=["--out", best_x],
                    search_space=[SearchParam("x", "choice", values)],
                    sampling="grid",
                    primary_metric_name="score",
                    max_total_runs=10,
                    max_concurrent_runs=2,
                    metrics_output=metrics,
                )
            ],
        )

    result = backend.run(pipeline())
    assert result.status == "Completed", result.error
    folder = Path(result.folder) / "sweep"
    # The best trial's output is the step's output.
    assert (folder / "outputs" / "best_x" / "x.txt").read_text() == "0.3"
    summary = result.steps[0].summary
    trials = summary["trials"]
    assert [t["parameters"] for t in trials] == [{"x": v} for v in (0.0, 0.3, 0.9)]
    assert all(t["status"] == "Completed" and not t["early_stopped"] for t in trials)
    assert summary["best_parameters"] == {"x": 0.3}
    assert summary["concurrent_trials"] == 2
    # metrics_output in v1's shape: trial run id -> metric -> values, every trial.
    document = json.loads((folder / "outputs" / "metrics" / "metrics.json").read_text())
    assert sorted(document) == sorted(t["id"] for t in trials)
    for t in trials:
        assert document[t["id"]]["score"] == [pytest.approx(-((t["parameters"]["x"] - 0.3) ** 2))]

    again = backend.run(pipeline())
    assert again.steps[0].reused
    assert again.steps[0].summary["best_parameters"] == {"x": 0.3}
    # A changed search space is a new sweep.
    assert backend.plan_run(pipeline((0.0, 0.25)))[0].reuses is None


def test_bandit_stops_a_trial_that_falls_behind(tmp_path):
    backend = LocalBackend(tmp_path / "ws")
    pipeline = Pipeline(
        "bandit-toy",
        [
            SweepStep(
                name="sweep",
                source_dir=trial_folder(tmp_path),
                arguments=["--epochs", "15", "--pause", "0.5", "--out", Output("out")],
                search_space=[SearchParam("x", "choice", (0.3, 3.0))],
                sampling="grid",
                primary_metric_name="score",
                max_total_runs=2,
                max_concurrent_runs=2,
                early_termination=EarlyTermination("bandit", slack_amount=0.5),
            )
        ],
    )
    result = backend.run(pipeline)
    assert result.status == "Completed", result.error
    good, bad = result.steps[0].summary["trials"]
    assert good["status"] == "Completed" and not good["early_stopped"]
    assert bad["status"] == "Canceled" and bad["early_stopped"]


def test_automl_writes_a_model_evaluate_and_register_can_read(tmp_path):
    from sklearn.datasets import load_diabetes

    data = tmp_path / "data"
    data.mkdir()
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(data / "train.csv", index=False)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "main.py").write_text(
        "import shutil, sys\nshutil.copy(sys.argv[1] + '/train.csv', sys.argv[2])\n"
    )
    backend = LocalBackend(tmp_path / "ws")
    backend.register_datasets([DatasetConfig("rows", "file", path=data)], plan=False)
    from amlops.spec import DatasetInput

    prepared, model, metrics = Output("prepared"), Output("model"), Output("metrics")
    pipeline = Pipeline(
        "automl-toy",
        [
            ScriptStep("copy", copy, arguments=[DatasetInput("rows"), prepared]),
            AutoMLStep(
                name="automl",
                training_data=prepared.as_input(),
                metrics_output=metrics,
                model_output=model,
                task="regression",
                primary_metric="r2_score",
                label_column_name="target",
                iterations=3,
                n_cross_validations=2,
                allowed_models=["RandomForest", "ExtremeRandomTrees"],
            ),
        ],
    )
    result = backend.run(pipeline)
    assert result.status == "Completed", result.error
    out = Path(result.folder) / "automl" / "outputs"
    schema = json.loads((out / "model" / "schema.json").read_text())
    assert schema["target"] == "target" and schema["task"] == "regression"
    with open(out / "model" / "model.pkl", "rb") as fh:
        fitted = pickle.load(fh)
    predicted = fitted.predict(frame[schema["numeric"] + schema["categorical"]].head(5))
    assert len(predicted) == 5
    document = json.loads((out / "metrics" / "metrics.json").read_text())
    ((_, values),) = document.items()
    assert set(values) >= {"r2_score", "normalized_root_mean_squared_error"}
    summary = result.steps[1].summary
    assert summary["best_estimator"] in ("rf", "extra_tree")
    assert summary["iterations"] <= 3
