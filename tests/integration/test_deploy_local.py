"""`scripts/deploy.py` end to end on the local workspace, as a user runs it: real processes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import copy_repo, run_deploy


@dataclass(frozen=True)
class Deployed:
    root: Path  # the repo copy, its workspace in .amlops/
    manifest: dict  # the first deploy's --json
    stderr: str  # the first deploy's progress


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """One repo copy deployed once; the tests below read it and deploy again."""
    root = copy_repo(tmp_path_factory.mktemp("deploy") / "repo")
    first = run_deploy(root, "--json")
    return Deployed(root, json.loads(first.stdout), first.stderr)


def test_first_deploy_registers_builds_and_runs_train(deployed):
    manifest = deployed.manifest
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
    manifest, stderr = deployed.manifest, deployed.stderr
    assert "[1/4] prep: running" in stderr
    assert isinstance(manifest, dict)  # stdout parsed as one JSON document


def test_second_deploy_changes_nothing_and_reuses_every_step(deployed):
    root, first = deployed.root, deployed.manifest
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
    root = deployed.root
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
    root = deployed.root
    db = root / ".amlops" / "metadata.db"
    before = _counts(db)
    proc = run_deploy(root, "--plan", "--param", "train.n_estimators=50")
    assert "train: WouldRun" in proc.stdout and "prep: WouldReuse (of train_" in proc.stdout
    assert "would change" in proc.stdout
    assert _counts(db) == before


def test_manifest_is_written_for_ci(deployed):
    root = deployed.root
    manifest = json.loads((root / ".amlops" / "manifests" / "local.json").read_text())
    assert manifest["env"] == "local" and manifest["runs"]


def test_inspection_cli_lists_runs_datasets_and_models(deployed):
    root, manifest = deployed.root, deployed.manifest

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
    assert [s["Name"] for s in shown["StepRuns"]][:2] == ["prep", "train"]
    assert Path(shown["StepRuns"][0]["LogFolder"], "stdout.txt").exists()
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


def _active_schedules(root: Path) -> dict[str, str]:
    with sqlite3.connect(root / ".amlops" / "metadata.db") as conn:
        rows = conn.execute("SELECT name, id FROM schedules WHERE status='Active'").fetchall()
    return dict(rows)


def test_a_failed_run_holds_back_only_its_pipeline(deployed):
    """train still publishes and schedules; batch_score (its model alias does not exist) is
    held back, its endpoint and schedule left as they were; the deploy says it failed."""
    root = deployed.root
    schedules = _active_schedules(root)
    proc = run_deploy(root, "--json", "--param", "batch_score.model_version=nope", check=False)
    assert proc.returncode == 1
    manifest = json.loads(proc.stdout)
    assert manifest["held_back"] == ["batch_score"]
    assert [e["name"] for e in manifest["endpoints"]] == ["train"]
    assert [s["name"] for s in manifest["schedules"]] == ["train-nightly"]
    assert _active_schedules(root) == schedules  # score-on-new-data untouched, not disabled
    assert "error: pipeline 'batch_score' run batch_score_" in proc.stderr
    text = run_deploy(root, "--param", "batch_score.model_version=nope", check=False).stdout
    assert "nothing changed" not in text
    assert text.splitlines()[-1].startswith("deploy failed: 1 pipeline run(s) failed")
    assert "held back (their runs failed" in text and "batch_score" in text


def test_deploy_one_pipeline_leaves_the_others_alone(deployed):
    root = deployed.root
    schedules = _active_schedules(root)
    manifest = json.loads(run_deploy(root, "--json", "--pipeline", "train").stdout)
    assert [r["pipeline"] for r in manifest["runs"]] == ["train"]
    assert [e["name"] for e in manifest["endpoints"]] == ["train"]
    assert [s["name"] for s in manifest["schedules"]] == ["train-nightly"]
    assert _active_schedules(root) == schedules
    proc = run_deploy(root, "--pipeline", "ghost", check=False)
    assert proc.returncode == 2
    assert "--pipeline ghost: no pipeline 'ghost'" in proc.stderr


def test_version_and_a_closed_pipe_say_nothing_extra(deployed):
    root = deployed.root
    amlops = [sys.executable, "-m", "amlops.cli"]
    version = subprocess.run([*amlops, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("amlops ")
    lister = subprocess.Popen(
        [*amlops, "runs", "list", "--root", str(root), "--limit", "500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert lister.stdout.readline().startswith(b"RUN_ID")
    lister.stdout.close()  # as `| head -1` does
    _, err = lister.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_plan_after_a_deploy_imports_neither_sklearn_nor_mlflow(deployed):
    """--plan needs the sample's content, not scikit-learn: the deploy cached the sample."""
    root = deployed.root
    code = (
        "import sys\n"
        "from amlops.cli import deploy_main\n"
        f"code = deploy_main(['--plan', '--root', {str(root)!r}])\n"
        "heavy = [m for m in ('sklearn', 'mlflow') if m in sys.modules]\n"
        "print('HEAVY', ','.join(heavy), code, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY  0" in proc.stderr, proc.stderr[-2000:]


def test_the_registered_model_has_a_signature_and_an_input_example(deployed):
    root = deployed.root
    [mlmodel] = list((root / ".amlops" / "mlartifacts").rglob("MLmodel"))
    text = mlmodel.read_text()
    assert "signature:" in text and "saved_input_example_info:" in text
    assert '"name": "bmi"' in text  # the feature columns, typed
