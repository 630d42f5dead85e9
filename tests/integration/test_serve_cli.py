"""`amlops serve` as a user starts it: a real process, real HTTP, stopped by a signal."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from amlops.backends.local.mlflow_record import wait_for_records
from amlops.backends.local.workspace import LocalWorkspace
from amlops.runtime import PIPELINE_RUN_TAG, mlflow_client
from amlops.spec import Output, Pipeline, ScriptStep

SUBMIT = "/pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/"


@pytest.fixture
def repo(toy) -> Path:
    """A repo whose config/local.yml points at the toy workspace, with a slow pipeline added."""
    backend, pipeline, tmp_path = toy.backend, toy.pipeline, toy.root
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    slow_dir = tmp_path / "steps" / "slow"
    slow_dir.mkdir()
    (slow_dir / "main.py").write_text("import time\ntime.sleep(600)\n")
    slow = Pipeline("slow", [ScriptStep("nap", slow_dir, arguments=["--out", Output("o")])])
    backend.build([pipeline(), slow], plan=False)
    backend.publish([pipeline(), slow], plan=False)
    return tmp_path


def serve(root: Path, log: Path, *args: str) -> subprocess.Popen:
    """The service with its log in a file: a pipe nobody drains would fill and block it."""
    with open(log, "a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "amlops.cli", "serve", "--root", str(root), *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def amlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "amlops.cli", *args], capture_output=True, text=True, timeout=60
    )


TOKENS: dict[str, str] = {}


def token(root: Path) -> str:
    """The token as a user gets it: from `amlops token`."""
    if str(root) not in TOKENS:
        proc = amlops("token", "--root", str(root))
        assert proc.returncode == 0, proc.stderr
        TOKENS[str(root)] = proc.stdout.strip()
    return TOKENS[str(root)]


def request(url: str, root: Path, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Authorization", f"Bearer {token(root)}")
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read())


def post(url: str, root: Path, body: dict) -> dict:
    return request(url, root, {"ExperimentName": "cli", **body})


def run_status(url: str, root: Path, run_id: str) -> str:
    run = request(f"{url}/pipelines/v1.0/PipelineRuns/{run_id}", root)
    return run["Status"]["StatusCode"]


def until(predicate, what: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def test_serve_answers_on_the_port_it_prints_and_sigterm_cancels_the_run_in_progress(repo):
    log = repo / "serve.log"
    proc = serve(repo, log, "--port", "0", "--max-concurrent-runs", "1")
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"serving {repo / 'ws'} on http://127.0.0.1:")
        url = first.split(" on ")[1].split()[0]
        assert proc.stdout.readline() == f"web page: {url}/?token={token(repo)}\n"
        with urllib.request.urlopen(url + "/health", timeout=30) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        done = post(url + SUBMIT + "toy", repo, {"ParameterAssignments": {"seed": 7}})["Id"]
        until(lambda: run_status(url, repo, done) == "Completed", "the toy run")
        napping = post(url + SUBMIT + "slow", repo, {})["Id"]
        waiting = post(url + SUBMIT + "toy", repo, {"ParameterAssignments": {"seed": 8}})["Id"]
        until(lambda: run_status(url, repo, napping) == "Running", "the slow run to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    err = log.read_text()
    assert "canceling the runs in progress" in err
    # MLflow has the canceled run as KILLED, with its end time.
    workspace = LocalWorkspace(repo / "ws")
    wait_for_records(workspace.mlflow_records)
    client = mlflow_client(workspace.mlflow_lock, workspace.mlflow_uri)
    where = f"tags.`{PIPELINE_RUN_TAG}` = '{napping}' AND tags.`amlops.kind` = 'pipeline'"
    experiments = [e.experiment_id for e in client.search_experiments()]
    (killed,) = client.search_runs(experiments, filter_string=where)
    assert killed.info.status == "KILLED" and killed.info.end_time is not None
    # Nothing is left Running: the step was stopped and its run recorded as Canceled; the
    # queued run waits for the next start.
    restarted = serve(repo, log, "--port", "0", "--no-schedules")
    try:
        url = restarted.stdout.readline().split(" on ")[1].split()[0]
        assert run_status(url, repo, napping) == "Canceled"
        until(lambda: run_status(url, repo, waiting) == "Completed", "the queued run after restart")
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            assert restarted.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            restarted.kill()
            restarted.stdout.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "70000"], "--port 70000: must be a TCP port"),
        (["--poll-seconds", "0"], "--poll-seconds 0.0: must be more than 0"),
        (["--max-concurrent-runs", "0"], "--max-concurrent-runs 0: must be at least 1"),
        (["--env", "nowhere"], "--env 'nowhere'"),
    ],
)
def test_serve_refuses_bad_arguments_with_exit_2(repo, args, expected):
    proc = subprocess.run(
        [sys.executable, "-m", "amlops.cli", "serve", "--root", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and expected in proc.stderr


def test_serve_on_a_taken_port_says_which(repo):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = subprocess.run(
            [sys.executable, "-m", "amlops.cli", "serve", "--root", str(repo), "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_serve_without_a_workspace_says_to_deploy_first(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    proc = subprocess.run(
        [sys.executable, "-m", "amlops.cli", "serve", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "run 'make deploy' first" in proc.stderr
    assert not (tmp_path / "ws").exists()


def test_amlops_token_prints_the_workspace_token(repo):
    path = repo / "ws" / "token"
    assert token(repo) == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    proc = amlops("token", "--root", str(repo), "--json")
    assert json.loads(proc.stdout) == {"token": token(repo)}


def test_a_workspace_made_before_tokens_gets_one_and_a_shared_token_is_refused(repo):
    path = repo / "ws" / "token"
    path.unlink()
    made = amlops("token", "--root", str(repo))
    assert made.returncode == 0 and made.stdout.strip() == path.read_text().strip()
    path.chmod(0o644)
    proc = amlops("token", "--root", str(repo))
    assert proc.returncode == 2
    assert f"error: {path}: the token is readable by others (mode 0644)" in proc.stderr
    assert f"chmod 600 {path}" in proc.stderr


def test_amlops_token_without_a_workspace_says_to_deploy_first(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    proc = amlops("token", "--root", str(tmp_path))
    assert proc.returncode == 2 and "run 'make deploy' first" in proc.stderr
    assert not (tmp_path / "ws").exists()


def test_runs_show_prints_the_document_the_service_answers(repo):
    log = repo / "serve.log"
    proc = serve(repo, log, "--port", "0", "--no-schedules")
    try:
        url = proc.stdout.readline().split(" on ")[1].split()[0]
        run_id = post(url + SUBMIT + "toy", repo, {"ParameterAssignments": {"seed": 9}})["Id"]
        until(lambda: run_status(url, repo, run_id) == "Completed", "the toy run")
        served = request(f"{url}/pipelines/v1.0/PipelineRuns/{run_id}", repo)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        proc.stdout.close()
    shown = amlops("runs", "show", run_id, "--json", "--root", str(repo))
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    # The one difference: the address of the service, which the CLI takes from config.
    assert printed.pop("RunUrl").endswith(f"/pipelines/v1.0/PipelineRuns/{run_id}")
    assert served.pop("RunUrl") == f"{url}/pipelines/v1.0/PipelineRuns/{run_id}"
    assert printed == served
    assert printed["StepRuns"][0]["Why"] == ["no earlier run of this step"]

    text = amlops("runs", "show", run_id, "--root", str(repo)).stdout
    assert text.startswith(f"run {run_id}: Completed in ")
    assert "  a: Completed" in text and "      why: no earlier run of this step" in text
