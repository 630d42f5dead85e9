"""amlops export: what a deploy would submit, written offline as stable JSON documents."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "amlops.cli", "export", "--root", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_export_dev_writes_one_stable_document_per_pipeline(tmp_path):
    """Offline: this machine cannot reach Azure, so a call out would fail the command."""
    first, second = tmp_path / "a", tmp_path / "b"
    proc = export("--env", "dev", str(first))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(first / "train.v1.json"), str(first / "batch_score.v1.json")]
    assert export("--env", "dev", str(second)).returncode == 0
    for name in ("train.v1.json", "batch_score.v1.json"):
        assert (first / name).read_text() == (second / name).read_text()  # diffable: no ids

    train = json.loads((first / "train.v1.json").read_text())
    assert [s["name"] for s in train["steps"]] == ["prep", "train", "evaluate", "register"]
    prep = train["steps"][0]
    assert prep["kind"] == "PythonScriptStep" and prep["script"] == "main.py"
    assert prep["compute"] == "cpu-cluster" and prep["environment"] == "amlops-train"
    data = prep["arguments"][prep["arguments"].index("--data") + 1]
    assert data == {
        "type": "dataset", "name": "diabetes", "dataset": "diabetes", "dataset_type": "file",
        "mode": "mount", "version": "latest",
    }  # fmt: skip
    assert prep["arguments"][prep["arguments"].index("--seed") + 1] == {
        "type": "parameter",
        "name": "seed",
    }
    assert train["parameters"]["n_estimators"] == 200

    score = json.loads((first / "batch_score.v1.json").read_text())["steps"][0]
    assert score["kind"] == "ParallelRunStep" and score["script"] == "score.py"
    assert score["allow_reuse"] is False
    assert {"type": "dataset", "name": "scoring_data", "parameter": "scoring_data",
            "mode": "direct"} in score["inputs"]  # fmt: skip


def test_export_refuses_a_backend_that_submits_nowhere(tmp_path):
    proc = export("--env", "dev", "--backend", "local", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --backend local: nothing to export, it submits nowhere "
        "(export for: azureml_v1, azureml_v2)"
    )
    assert not any(tmp_path.iterdir())
