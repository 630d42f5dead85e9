"""A real step on the local backend sees the variables an Azure ML v1 step job has."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from amlops.backends.local.backend import LocalBackend
from amlops.backends.local.runner import Runner, RunRequest
from amlops.config import DatasetConfig
from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep

# Writes what the step saw: its environment, azureml-core's run context (only when asked:
# importing azureml takes seconds) and amlops.runtime's reading of it.
STEP = """\
import json, os, sys
from pathlib import Path
from amlops import runtime

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
seen = {"argv": args, "env": dict(os.environ)}
if args.get("--aml") == "yes":
    from azureml.core import Run
    seen["run_context"] = type(Run.get_context()).__name__
ctx = runtime.context()
seen["context"] = {k: getattr(ctx, k) for k in
                   ("run_id", "experiment", "pipeline_run_id", "step", "git_commit", "datasets")}
(Path(args["--out"]) / "seen.json").write_text(json.dumps(seen))
"""

# What an AML job amlops itself runs in would pass on: all of it is what Run._load_scope
# needs to go online (azureml-core run.py), with endpoints on a closed local port.
OUTER_JOB = {
    "AZUREML_ARM_SUBSCRIPTION": "00000000-0000-0000-0000-000000000000",
    "AZUREML_ARM_RESOURCEGROUP": "rg-outer",
    "AZUREML_ARM_WORKSPACE_NAME": "mlw-outer",
    "AZUREML_ARM_PROJECT_NAME": "outer-experiment",
    "AZUREML_RUN_ID": "outer-run",
    "AZUREML_RUN_TOKEN": "outer-token",
    "AZUREML_RUN_TOKEN_EXPIRY": "4102444800",
    "AZUREML_SERVICE_ENDPOINT": "http://127.0.0.1:9",
    "AZUREML_DISCOVERY_SERVICE_ENDPOINT": "http://127.0.0.1:9/discovery",
    "MLFLOW_RUN_ID": "outer-mlflow-run",
    "AML_PARAMETER_outer": "1",
}


@pytest.fixture
def backend(tmp_path: Path):
    for name in ("prep", "train"):
        (tmp_path / "steps" / name).mkdir(parents=True)
        (tmp_path / "steps" / name / "main.py").write_text(STEP)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a,b\n1,2\n")
    backend = LocalBackend(tmp_path / "ws")
    backend.register_datasets(
        [DatasetConfig(name="toy-data", kind="file", path=tmp_path / "data")], plan=False
    )
    yield backend
    backend.close()


def pipeline(root: Path, *, aml: bool = False) -> Pipeline:
    prepared, model = Output("prepared"), Output("model")
    step_dir = root.parent / "steps"
    return Pipeline(
        "envtoy",
        [
            ScriptStep(name="prep", source_dir=step_dir / "prep", script="main.py",
                       arguments=["--data", DatasetInput("toy-data"), "--out", prepared]),
            ScriptStep(name="train", source_dir=step_dir / "train", script="main.py",
                       arguments=["--prepared", prepared.as_input(),
                                  "--lr", Param("learning_rate", 0.05),
                                  "--out", model, "--aml", "yes" if aml else "no"]),
        ],
    )  # fmt: skip


def seen(backend: LocalBackend, run_id: str, step: str) -> dict:
    row = backend.store.one(
        "SELECT outputs FROM step_runs WHERE run_id=? AND step=?", (run_id, step)
    )
    [folder] = json.loads(row["outputs"]).values()
    return json.loads((backend.ws.abs(folder) / "seen.json").read_text())


def test_a_step_sees_the_aml_job_variables_with_local_values(backend):
    result = backend.run(
        pipeline(backend.ws.root), {"learning_rate": 0.1}, tags={"git_commit": "c0ffee"}
    )
    assert result.status == "Completed", result.error
    prep, train = seen(backend, result.run_id, "prep"), seen(backend, result.run_id, "train")
    env = train["env"]
    assert env["AZUREML_RUN_ID"] == f"{result.run_id}_train"
    assert prep["env"]["AZUREML_RUN_ID"] == f"{result.run_id}_prep"
    assert env["AZUREML_ARM_PROJECT_NAME"] == env["MLFLOW_EXPERIMENT_NAME"] == "envtoy"
    assert env["AML_PARAMETER_learning_rate"] == "0.1"
    assert "AML_PARAMETER_learning_rate" not in prep["env"]  # only the parameters it uses
    # Each input and output in the variable named after it, the path its argument holds.
    assert env["prepared"] == train["argv"]["--prepared"] == prep["argv"]["--out"]
    assert env["model"] == train["argv"]["--out"]
    assert prep["env"]["toy_data"] == prep["argv"]["--data"]
    assert Path(prep["env"]["toy_data"], "rows.csv").is_file()
    assert env["AZUREML_DATASET_ENVIRONMENT_VARS"] == "prepared:mount"
    assert prep["env"]["AZUREML_DATASET_ENVIRONMENT_VARS"] == "toy_data:mount"
    assert env["AZUREML_DATASET_FILE_OUTPUTS"] == "model"
    # The lineage amlops.runtime reads from them.
    assert train["context"] == {
        "run_id": f"{result.run_id}_train",
        "experiment": "envtoy",
        "pipeline_run_id": result.run_id,
        "step": "train",
        "git_commit": "c0ffee",
        "datasets": {},
    }
    assert prep["context"]["datasets"] == {"toy-data": "1"}


def test_a_submit_naming_an_experiment_runs_in_it(backend):
    request = RunRequest(pipeline(backend.ws.root), {}, experiment="rescore")
    result = Runner(backend.ws, backend.store, progress=io.StringIO()).run(request)
    assert result.status == "Completed", result.error
    env = seen(backend, result.run_id, "train")["env"]
    assert env["AZUREML_ARM_PROJECT_NAME"] == env["MLFLOW_EXPERIMENT_NAME"] == "rescore"


def test_run_get_context_in_a_step_stays_offline_even_inside_an_aml_job(backend, monkeypatch):
    for name, value in OUTER_JOB.items():
        monkeypatch.setenv(name, value)
    result = backend.run(pipeline(backend.ws.root, aml=True), {})
    assert result.status == "Completed", result.error
    train = seen(backend, result.run_id, "train")
    assert train["run_context"] == "_OfflineRun"
    env = train["env"]
    # The outer job's identity is not passed on; this step's own run id is.
    assert env["AZUREML_RUN_ID"] == f"{result.run_id}_train"
    assert env["AZUREML_ARM_PROJECT_NAME"] == "envtoy"
    for name in ("AZUREML_ARM_SUBSCRIPTION", "AZUREML_RUN_TOKEN", "AZUREML_SERVICE_ENDPOINT",
                 "MLFLOW_RUN_ID", "AML_PARAMETER_outer"):  # fmt: skip
        assert name not in env, name
