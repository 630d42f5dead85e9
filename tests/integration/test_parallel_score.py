"""The batch-score entry script under the real driver, with a model from a real MLflow registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCORE_DIR = ROOT / "pipelines" / "steps" / "score"

# Registers a model shaped like the train pipeline's (raw feature columns in, one number out)
# under the alias the register step sets, and writes scoring files plus expected predictions.
SETUP = """
import sys
from pathlib import Path

import mlflow
import mlflow.sklearn
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor

tmp = Path(sys.argv[1])
frame = load_diabetes(as_frame=True, scaled=False).frame
features = frame.drop(columns=["target"])
model = GradientBoostingRegressor(n_estimators=20, max_depth=2, random_state=0)
model.fit(features, frame["target"])
mlflow.set_experiment("t")
with mlflow.start_run():
    mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name="diabetes-model",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
    )
mlflow.MlflowClient().set_registered_model_alias("diabetes-model", "production", "1")
scoring = features.copy()
scoring.insert(0, "row_id", range(1, len(scoring) + 1))
data = tmp / "data"
data.mkdir()
for i in range(3):
    scoring.iloc[i * 150 : (i + 1) * 150].to_csv(data / f"part-{i}.csv", index=False)
with open(data / "part-0.csv", "a") as f:
    f.write("," + ",".join(["50"] * 10) + "\\n")  # a row without its key: one failed item
expected = dict(zip(scoring["row_id"], model.predict(features), strict=True))
(tmp / "expected.txt").write_text("".join(f"{k} {float(v)!r}\\n" for k, v in expected.items()))
"""


def test_score_writes_one_keyed_prediction_per_row_with_the_production_model(tmp_path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "AMLOPS_STEP_LOG_DIR": str(tmp_path / "log"),
    }
    # Artifacts of a sqlite-backed MLflow land under the cwd: keep them in tmp_path.
    setup = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SETUP), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert setup.returncode == 0, setup.stderr
    (tmp_path / "out").mkdir()
    # One worker: this test is about the entry script; the driver's own tests cover parallelism.
    options = (
        "--entry_script score.py --mini_batch_size 4KB --error_threshold 1 "
        "--output_action append_row --append_row_file_name predictions.txt "
        "--process_count_per_node 1 --node_count 1 --run_invocation_timeout 60 --run_max_try 3"
    ).split()
    user_args = "--model_name diabetes-model --model_version production --key_column row_id"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "amlops.parallel",
            *options,
            "--output",
            str(tmp_path / "out"),
            "--input",
            f"scoring_data=tabular:{tmp_path / 'data'}",
            "--summary",
            str(tmp_path / "log" / "summary.json"),
            "--",
            *user_args.split(),
        ],
        cwd=SCORE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "score: loaded models:/diabetes-model@production" in proc.stdout
    summary = json.loads((tmp_path / "log" / "summary.json").read_text())
    assert (summary["items"], summary["items_failed"], summary["items_returned"]) == (443, 1, 442)
    assert summary["mini_batches"] > 3  # 4KB mini-batches: several per file
    lines = (tmp_path / "out" / "predictions.txt").read_text().splitlines()
    got = {int(k): float(v) for k, v in (line.split(" ") for line in lines)}
    expected = {
        int(k): float(v)
        for k, v in (
            line.split(" ") for line in (tmp_path / "expected.txt").read_text().split("\n") if line
        )
    }
    assert len(lines) == 442 and got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-9 for k in expected)
