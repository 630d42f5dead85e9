"""evaluate and register read a model given as one file, as Azure ML v1's AutoML writes its best
model (TrainingOutput "Model"), as they read the train step's folder: prep's schema stands in
for the folder's. Real step scripts in real subprocesses on the sample data, MLflow on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO

from amlops.samples import materialise

STEPS = REPO / "pipelines" / "steps"


def run_step(step: str, *args: object, env: dict[str, str], cwd: Path) -> None:
    # The working folder is the test's: MLflow writes artifacts under ./mlruns, which in a
    # step's folder would land in its snapshot (and in git). Python finds the step's own
    # modules beside the script either way.
    proc = subprocess.run(
        [sys.executable, str(STEPS / step / "main.py"), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_evaluate_and_register_take_a_model_file(tmp_path):
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        MLFLOW_EXPERIMENT_NAME="model-file",
    )
    data, prepared, model = tmp_path / "data", tmp_path / "prepared", tmp_path / "model"
    data.mkdir()
    materialise("sklearn:diabetes", data, "test")
    run_step("prep", "--data", data, "--target", "target", "--task", "regression",
             "--output", prepared, env=env, cwd=tmp_path)  # fmt: skip
    run_step("train", "--prepared", prepared, "--n_estimators", 20, "--output", model, env=env,
             cwd=tmp_path)  # fmt: skip
    # AutoML's best model on v1: the pickle alone, no schema.json beside it.
    model_file = tmp_path / "model_data"
    model_file.write_bytes((model / "model.pkl").read_bytes())
    reports = {}
    for name, given in (("folder", model), ("file", model_file)):
        out = tmp_path / f"evaluation-{name}"
        run_step("evaluate", "--prepared", prepared, "--model", given,
                 "--model_name", f"m-{name}", "--output", out, env=env, cwd=tmp_path)  # fmt: skip
        reports[name] = json.loads((out / "evaluation.json").read_text())
    assert reports["file"]["candidate"] == reports["folder"]["candidate"]
    assert reports["file"]["register"] is True  # no production model yet
    registration = tmp_path / "registration"
    run_step("register", "--model", model_file, "--evaluation", tmp_path / "evaluation-file",
             "--model_name", "m-file", "--dataset", "diabetes", "--prepared", prepared,
             "--output", registration, env=env, cwd=tmp_path)  # fmt: skip
    result = json.loads((registration / "registration.json").read_text())
    assert (result["registered"], result["version"]) == (True, "1")
