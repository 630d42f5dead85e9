"""`scripts/deploy.py` end to end on the local workspace, as a user runs it: real processes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from helpers import REPO, run_deploy


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """One repo copy deployed once; the tests below read it and deploy again."""
    root = tmp_path_factory.mktemp("deploy") / "repo"
    for name in ("config", "pipelines", "scripts"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    first = run_deploy(root, "--json")
    return root, json.loads(first.stdout), first.stderr


def test_first_deploy_registers_builds_and_runs_train(deployed):
    _, manifest, _ = deployed
    assert {d["name"]: (d["version"], d["action"]) for d in manifest["datasets"]}["diabetes"] == (
        "1",
        "created",
    )
    assert [(e["name"], e["version"]) for e in manifest["environments"]] == [("amlops-train", "1")]
    train = next(r for r in manifest["runs"] if r["pipeline"] == "train")
    assert train["status"] == "Completed"
    assert [s["name"] for s in train["steps"]] == ["prep", "train", "evaluate", "register"]
    assert not any(s["reused"] for s in train["steps"])
    model = next(m for m in manifest["models"] if m["name"] == "diabetes-model")
    assert model["version"] == "1" and "production" in model["aliases"]
    tags = model["tags"]
    assert tags["dataset"] == "diabetes" and tags["dataset_version"] == "1"
    assert tags["pipeline_run_id"] == train["run_id"]
    assert float(tags["metric.rmse"]) > 0 and "git_commit" in tags
    assert manifest["changes"] > 0
    assert {(e["name"], e["version"], e["action"]) for e in manifest["endpoints"]} == {
        ("train", "0", "created"),
        ("batch_score", "0", "created"),
    }
    assert {(s["name"], s["action"]) for s in manifest["schedules"]} == {
        ("train-nightly", "created"),
        ("score-on-new-data", "created"),
    }


def test_progress_goes_to_stderr_and_json_alone_to_stdout(deployed):
    _, manifest, stderr = deployed
    assert "[1/4] prep: running" in stderr
    assert isinstance(manifest, dict)  # stdout parsed as one JSON document


def test_second_deploy_changes_nothing_and_reuses_every_step(deployed):
    root, first, _ = deployed
    second = json.loads(run_deploy(root, "--json").stdout)
    assert second["changes"] == 0
    runs = {run["pipeline"]: run for run in second["runs"]}
    assert all(s["reused"] for s in runs["train"]["steps"]), runs["train"]["steps"]
    # scoring has allow_reuse=False (the production alias can move): it runs, and that is
    # by design, not a change
    assert [s["reused"] for s in runs["batch_score"]["steps"]] == [False]
    assert all(run["status"] == "Completed" for run in second["runs"])
    assert [d["action"] for d in second["datasets"]] == ["unchanged"] * len(second["datasets"])
    assert sorted((m["name"], m["version"]) for m in second["models"]) == sorted(
        (m["name"], m["version"]) for m in first["models"]
    )
    text = run_deploy(root).stdout
    assert "nothing changed" in text and "(reused from" in text


def test_a_rest_call_scores_new_data_with_the_deployed_endpoint(deployed):
    """What the batch-score DataPathParam is for: point a published pipeline at other data."""
    root, _, _ = deployed
    store = root / ".amlops" / "datastores" / "workspaceblobstore"
    (store / "scoring" / "other").mkdir()
    sample = sorted((store / "scoring" / "diabetes").glob("*.csv"))[0]
    shutil.copy(sample, store / "scoring" / "other" / "rows.csv")
    rows = len(sample.read_text().splitlines()) - 1  # a header, then one row per line
    serve = subprocess.Popen(
        [sys.executable, "-m", "amlops.cli", "serve", "--root", str(root), "--port", "0",
         "--no-schedules"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    token = subprocess.run(
        [sys.executable, "-m", "amlops.cli", "token", "--root", str(root)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    try:
        url = serve.stdout.readline().split(" on ")[1].split()[0]
        other = {"DataStoreName": "workspaceblobstore", "RelativePath": "scoring/other"}
        body = {"ExperimentName": "rescore", "DataPathAssignments": {"scoring_data": other}}
        request = urllib.request.Request(
            f"{url}/pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/batch_score",
            data=json.dumps(body).encode(),
            method="POST",
            headers=auth,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            run_id = json.loads(response.read())["Id"]
        deadline = time.monotonic() + 300
        while True:
            run_url = f"{url}/pipelines/v1.0/PipelineRuns/{run_id}"
            with urllib.request.urlopen(urllib.request.Request(run_url, headers=auth)) as r:
                run = json.loads(r.read())
            status = run["Status"]["StatusCode"]
            if status not in ("Queued", "Running") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
        serve.stdout.close()
    assert status == "Completed", run
    assert run["ParameterAssignments"]["scoring_data"] == "workspaceblobstore/scoring/other"
    assert run["StepRuns"][0]["Summary"]["items"] == rows


def test_plan_changes_nothing(deployed):
    root, _, _ = deployed
    db = root / ".amlops" / "metadata.db"
    before = _counts(db)
    proc = run_deploy(root, "--plan", "--param", "train.n_estimators=50")
    assert "train: WouldRun" in proc.stdout and "prep: WouldReuse" in proc.stdout
    assert "would change" in proc.stdout
    assert _counts(db) == before


def test_manifest_is_written_for_ci(deployed):
    root, _, _ = deployed
    manifest = json.loads((root / ".amlops" / "manifests" / "local.json").read_text())
    assert manifest["env"] == "local" and manifest["runs"]


def test_inspection_cli_lists_runs_datasets_and_models(deployed):
    root, manifest, _ = deployed

    def amlops(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "amlops.cli", *args, "--root", str(root)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "diabetes" in amlops("datasets", "list")
    run_id = manifest["runs"][0]["run_id"]
    assert run_id in amlops("runs", "list")
    shown = json.loads(amlops("runs", "show", run_id, "--json"))
    assert [s["name"] for s in shown["steps"]][:2] == ["prep", "train"]
    assert Path(shown["steps"][0]["logs"], "stdout.txt").exists()
    assert "production" in amlops("models", "list")
    missing = subprocess.run(
        [sys.executable, "-m", "amlops.cli", "runs", "show", "nope", "--root", str(root)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "run 'nope' not found" in missing.stderr


def test_a_users_own_csv_works_with_no_code_change(repo_copy):
    """A classification CSV with a categorical string column and gaps, wired in by config only."""
    csv = repo_copy / "data" / "churn.csv"
    csv.parent.mkdir()
    rows = ["plan,monthly,tenure,churned"]
    for i in range(120):
        plan = ["basic", "pro", "team"][i % 3]
        monthly = "" if i % 17 == 0 else str(20 + (i * 7) % 60)
        rows.append(f"{plan},{monthly},{i % 24},{'yes' if (i % 3 == 0 or i % 24 < 4) else 'no'}")
    csv.write_text("\n".join(rows) + "\n")
    config_file = repo_copy / "config" / "local.yml"
    config = yaml.safe_load(config_file.read_text())
    config["datasets"] = {"churn": {"kind": "file", "path": "data/churn.csv"}}
    config["pipelines"] = {"train": {**config["pipelines"]["train"]}}
    config["schedules"] = {k: v for k, v in config["schedules"].items() if v["pipeline"] == "train"}
    config["pipelines"]["train"].update(
        dataset="churn", target="churned", task="classification", model_name="churn-model"
    )
    config_file.write_text(yaml.safe_dump(config))
    manifest = json.loads(run_deploy(repo_copy, "--json").stdout)
    assert manifest["runs"][0]["status"] == "Completed"
    assert [m["name"] for m in manifest["models"]] == ["churn-model"]
    assert "metric.accuracy" in manifest["models"][0]["tags"]


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        tables = ("assets", "pipelines", "runs", "step_runs")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


def test_two_deploys_at_once_register_each_thing_once(repo_copy):
    """Two real processes race to register and build on one workspace: one version each."""
    command = [sys.executable, str(repo_copy / "scripts" / "deploy.py"), "--stage"]
    procs = [
        subprocess.Popen([*command, stage, "--json"], cwd=repo_copy, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for stage in ("register", "register")
    ]  # fmt: skip
    results = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    with sqlite3.connect(repo_copy / ".amlops" / "metadata.db") as conn:
        versions = conn.execute("SELECT kind, name, COUNT(*) FROM assets GROUP BY kind, name")
        assert {(k, n): c for k, n, c in versions} == {
            ("dataset", "diabetes"): 1,
            ("dataset", "diabetes-scoring"): 1,
            ("environment", "amlops-train"): 1,
        }
    created = [
        d["action"] for out, _ in results for d in json.loads(out)["datasets"]
    ]  # one process created each dataset, the other found it unchanged
    assert sorted(created) == ["created", "created", "unchanged", "unchanged"]
