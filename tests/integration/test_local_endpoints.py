"""Published endpoints on the local workspace, run over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import stat
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from amlops.backends.local.rest import RestServer
from amlops.backends.local.service import LocalService
from amlops.errors import ConfigError
from amlops.spec import DatasetInput, Output, ParallelStep, Param, Pipeline, ScriptStep

SUBMIT = "/pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/"
FINISHED = {"Completed", "Failed", "Canceled"}


@pytest.fixture
def served(toy):
    """The toy workspace built and published, with its service listening on a free port."""
    backend, pipeline, tmp_path = toy.backend, toy.pipeline, toy.root
    backend.build([pipeline()], plan=False)
    backend.publish([pipeline()], plan=False)
    service = LocalService(backend.ws.root)
    server = RestServer(service, 0)
    service.start(schedules=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    TOKENS[server.url] = token_of(backend.ws.root)
    yield backend, pipeline, tmp_path, server.url
    server.shutdown()
    server.server_close()
    service.stop()


TOKENS: dict[str, str] = {}  # each served workspace's token, by its URL


def token_of(root: Path) -> str:
    """The token as a user reads it: the workspace's token file."""
    return (root / "token").read_text().strip()


def call(
    url: str,
    body: object | None = None,
    method: str | None = None,
    token: str | None = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """A JSON request with the service's token ("" picks it; None sends no token)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
    if token == "":
        token = next(t for base, t in TOKENS.items() if url.startswith(base))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def submit(url: str, name: str, body: dict | None = None) -> tuple[int, dict]:
    return call(url + SUBMIT + name, {"ExperimentName": "tests", **(body or {})})


def wait_for(url: str, run_id: str) -> dict:
    """The run's document once it has finished (bounded, so a hung run fails the test)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, run = call(f"{url}/pipelines/v1.0/PipelineRuns/{run_id}")
        assert status == 200
        if run["Status"]["StatusCode"] in FINISHED:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def edit_step(tmp_path: Path, step: str, marker: str) -> None:
    script = tmp_path / "steps" / step / "main.py"
    script.write_text(script.read_text() + f"\n# {marker}\n")


def test_publishing_an_unchanged_pipeline_adds_no_version(toy):
    backend, pipeline = toy.backend, toy.pipeline
    backend.build([pipeline()], plan=False)
    first = backend.publish([pipeline()], plan=False)[0]
    again = backend.publish([pipeline()], plan=False)[0]
    assert (first.action, first.version) == ("created", "0")
    assert (again.action, again.version) == ("unchanged", "0")
    assert first.detail["url"].endswith(SUBMIT + "toy")


def test_a_changed_pipeline_becomes_the_default_and_a_revert_points_back(toy):
    backend, pipeline, tmp_path = toy.backend, toy.pipeline, toy.root
    backend.build([pipeline()], plan=False)
    backend.publish([pipeline()], plan=False)
    original = (tmp_path / "steps" / "c" / "main.py").read_text()
    edit_step(tmp_path, "c", "v2")
    backend.build([pipeline()], plan=False)
    plan = backend.publish([pipeline()], plan=True)[0]
    assert (plan.action, plan.version) == ("updated", "1")
    assert backend.store.one("SELECT default_version FROM endpoints")[0] == "0"  # plan: no write
    changed = backend.publish([pipeline()], plan=False)[0]
    assert (changed.action, changed.version) == ("updated", "1")
    (tmp_path / "steps" / "c" / "main.py").write_text(original)
    reverted = backend.publish([pipeline()], plan=False)[0]
    assert (reverted.action, reverted.version, reverted.detail["reverts"]) == ("updated", "0", True)
    versions = backend.store.all("SELECT version FROM endpoint_versions ORDER BY version")
    assert [v[0] for v in versions] == ["0", "1"]


def test_publish_before_build_names_the_stage_to_run(toy):
    backend, pipeline = toy.backend, toy.pipeline
    with pytest.raises(ConfigError, match="'toy' is not built yet: run .* --stage build"):
        backend.publish([pipeline()], plan=False)
    assert backend.store.one("SELECT COUNT(*) FROM endpoints")[0] == 0


def test_a_rest_submit_runs_the_published_pipeline_with_its_parameters(served):
    backend, _, _, url = served
    body = {"ExperimentName": "tuning", "ParameterAssignments": {"alpha": "0.9"}}
    status, queued = call(url + SUBMIT + "toy", body)
    assert status == 200 and queued["Status"]["StatusCode"] == "Queued"
    assert queued["PipelineVersion"] == "0" and queued["RunHistoryExperimentName"] == "tuning"
    run = wait_for(url, queued["Id"])
    # One shape for POST and GET: the same keys, Azure ML's names.
    assert set(run) == set(queued)
    assert run["Status"]["StatusCode"] == "Completed" and run["Status"]["EndTime"].endswith("Z")
    assert run["ParameterAssignments"]["alpha"] == 0.9  # coerced to the Param's type, as AML does
    assert (run["RunType"], run["PipelineEndpointName"]) == ("HTTP", "toy")
    assert run["RunUrl"] == f"{url}/pipelines/v1.0/PipelineRuns/{queued['Id']}"
    _, listed = call(f"{url}/pipelines/v1.0/PipelineRuns")
    assert [(r["Id"], r["RunType"]) for r in listed] == [(queued["Id"], "HTTP")]
    assert listed[0] == run
    out = Path(run["StepRuns"][1]["Outputs"]["ob"]) / "data.txt"
    assert json.loads(out.read_text())["--alpha"] == "0.9"
    # The same submit again reuses every step.
    _, queued = submit(url, "toy", {"ParameterAssignments": {"alpha": 0.9}})
    second = wait_for(url, queued["Id"])
    assert [s["ReusedFrom"] is not None for s in second["StepRuns"]] == [True, True, True]


def test_a_published_version_is_frozen_and_older_versions_stay_runnable(served):
    backend, pipeline, tmp_path, url = served
    edit_step(tmp_path, "c", "not published")
    # Unpublished edits change nothing an endpoint runs: c is reused from the same code.
    first = wait_for(url, submit(url, "toy")[1]["Id"])
    second = wait_for(url, submit(url, "toy")[1]["Id"])
    assert second["StepRuns"][2]["ReusedFrom"] == f"{first['Id']}/c"
    backend.build([pipeline()], plan=False)
    assert backend.publish([pipeline()], plan=False)[0].version == "1"
    newest = wait_for(url, submit(url, "toy")[1]["Id"])
    assert newest["PipelineVersion"] == "1" and newest["StepRuns"][2]["ReusedFrom"] is None
    status, body = submit(url, "toy?pipelineVersion=0")
    assert status == 200 and body["PipelineVersion"] == "0"
    assert wait_for(url, body["Id"])["StepRuns"][2]["ReusedFrom"] == f"{first['Id']}/c"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("toy", {"ParameterAssignments": {"beta": 1}}, 400, "has no parameter 'beta'"),
        ("toy", {"ParameterAssignments": {"seed": "x"}}, 400, "parameter 'seed' takes int"),
        ("toy", {"ParameterAssignments": [1]}, 400, "ParameterAssignments must be an object"),
        ("toy", {"ParameterAssignments": {"seed": [7]}}, 400, "ParameterAssignments.seed: must"),
        ("toy", {"Parameters": {}}, 400, "Parameters: unknown key"),
        ("toy", {"DataPathAssignments": {"x": "s/p"}}, 400, "DataPathAssignments.x: use"),
        ("toy", {"ExperimentName": None}, 400, "ExperimentName: required"),
        ("toy", {"ExperimentName": "a b"}, 400, "ExperimentName: 'a b' must be"),
        ("toy?pipelineVersion=7", {}, 404, "endpoint 'toy' has no version '7'"),
        ("ghost", {}, 404, "no pipeline endpoint 'ghost' (endpoints: toy)"),
    ],
)
def test_a_bad_submit_is_refused_with_the_key_to_fix_and_queues_nothing(
    served, path, body, status, message
):
    backend, _, _, url = served
    body = {"ExperimentName": "tests", **body}
    if body["ExperimentName"] is None:
        del body["ExperimentName"]
    got, answer = call(url + SUBMIT + path, body)
    assert got == status
    assert message in answer["error"]["message"]
    assert backend.store.one("SELECT COUNT(*) FROM runs")[0] == 0


def test_a_body_that_is_not_json_is_a_400(served):
    _, _, _, url = served
    request = urllib.request.Request(url + SUBMIT + "toy", data=b"{nope", method="POST")
    request.add_header("Authorization", f"Bearer {TOKENS[url]}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert "not JSON" in json.loads(caught.value.read())["error"]["message"]


def test_endpoints_and_unknown_runs_read_over_rest(served):
    _, _, _, url = served
    status, endpoints = call(url + "/pipelines/v1.0/PipelineEndpoints")
    assert status == 200
    assert [(e["name"], e["default_version"]) for e in endpoints] == [("toy", "0")]
    assert endpoints[0]["url"] == url + SUBMIT + "toy"
    status, body = call(url + "/pipelines/v1.0/PipelineRuns/toy_nope")
    assert status == 404 and "toy_nope" in body["error"]["message"]


def test_a_refused_request_does_not_garble_the_next_one_on_its_connection(served):
    """A client that keeps its connection open (most do) gets a clean answer after an error."""
    _, _, _, url = served
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    body = json.dumps({"ParameterAssignments": {"alpha": 0.1}})
    auth = {"Authorization": f"Bearer {TOKENS[url]}"}
    connection.request("POST", "/pipelines/v1.0/nowhere", body=body, headers=auth)
    first = connection.getresponse()
    assert first.status == 404
    assert "no such resource" in json.loads(first.read())["error"]["message"]
    connection.request("GET", "/health")
    second = connection.getresponse()
    assert (second.status, json.loads(second.read())) == (200, {"status": "ok"})
    connection.close()


# --- the token ------------------------------------------------------------------------------


def test_the_token_is_made_with_the_workspace_and_only_its_owner_reads_it(toy):
    path = toy.backend.ws.root / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/pipelines/v1.0/PipelineRuns"),
        ("GET", "/pipelines/v1.0/PipelineEndpoints/toy"),
        ("GET", "/pipelines/v1.0/Schedules"),
        ("POST", SUBMIT + "toy"),
        ("DELETE", SUBMIT + "toy"),
        ("GET", "/"),
        ("GET", "/ui/api/overview"),
        ("GET", "/nowhere"),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token", "Basic"])
def test_every_route_but_health_refuses_a_missing_or_wrong_token(served, method, path, token):
    backend, _, _, url = served
    headers = {}
    if token == "Basic":  # the right token under another scheme is no bearer token
        token, headers = None, {"Authorization": f"Basic {TOKENS[url]}"}
    body = {"ExperimentName": "x"} if method == "POST" else None
    status, answer = call(url + path, body, method=method, token=token, headers=headers)
    assert status == 401 and answer["error"]["code"] == "Unauthorized"
    assert "amlops token" in answer["error"]["message"]
    assert backend.store.one("SELECT COUNT(*) FROM runs")[0] == 0
    assert call(url + "/health", token=None) == (200, {"status": "ok"})


def test_the_course_client_works_with_the_token_and_is_refused_without(served):
    """The client code of the course material, unchanged: requests with a bearer header."""
    import requests

    backend, _, _, url = served
    rest_endpoint = url + SUBMIT + "toy"
    token = token_of(backend.ws.root)
    response = requests.post(
        rest_endpoint,
        headers={"Authorization": "Bearer " + token},
        json={"ExperimentName": "rest-pipeline", "ParameterAssignments": {"seed": 3}},
        timeout=30,
    )
    response.raise_for_status()
    run_id = response.json()["Id"]
    assert wait_for(url, run_id)["ParameterAssignments"]["seed"] == 3
    refused = requests.post(rest_endpoint, json={"ExperimentName": "rest-pipeline"}, timeout=30)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"


# --- bodies and methods ---------------------------------------------------------------------


def test_a_chunked_submit_is_read_whole(served):
    """A body sent in chunks, with no Content-Length, counts like any other."""
    _, _, _, url = served
    body = json.dumps({"ExperimentName": "chunks", "ParameterAssignments": {"seed": 999}})

    def chunks():
        yield body[:10].encode()
        yield body[10:].encode()

    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    headers = {"Authorization": f"Bearer {TOKENS[url]}", "Content-Type": "application/json"}
    connection.request("POST", SUBMIT + "toy", body=chunks(), headers=headers,
                       encode_chunked=True)  # fmt: skip
    response = connection.getresponse()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    assert wait_for(url, answer["Id"])["ParameterAssignments"]["seed"] == 999
    # A bad value in chunks is refused as it would be in one piece.
    bad = json.dumps({"ExperimentName": "chunks", "ParameterAssignments": {"seed": "many"}})
    connection.request("POST", SUBMIT + "toy", body=iter([bad.encode()]), headers=headers,
                       encode_chunked=True)  # fmt: skip
    response = connection.getresponse()
    assert response.status == 400
    assert "parameter 'seed' takes int" in json.loads(response.read())["error"]["message"]
    connection.close()


def test_an_empty_or_oversized_body_is_refused(served):
    backend, _, _, url = served
    request = urllib.request.Request(url + SUBMIT + "toy", data=b"", method="POST")
    request.add_header("Authorization", f"Bearer {TOKENS[url]}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert "ExperimentName" in json.loads(caught.value.read())["error"]["message"]
    status, answer = call(url + SUBMIT + "toy", {"ExperimentName": "x", "Description": "y" * 2**20})
    assert status == 413 and answer["error"]["code"] == "RequestTooLarge"
    assert backend.store.one("SELECT COUNT(*) FROM runs")[0] == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("DELETE", SUBMIT + "toy", 405, "MethodNotAllowed"),
        ("PUT", "/pipelines/v1.0/PipelineRuns", 405, "MethodNotAllowed"),
        ("GET", SUBMIT + "toy", 405, "MethodNotAllowed"),
        ("BREW", "/pipelines/v1.0/PipelineEndpoints", 405, "MethodNotAllowed"),
        ("DELETE", "/nowhere", 404, "NotFound"),
        ("GET", "/ui/api/runs/toy_nope/graph", 404, "NotFound"),
        ("GET", "/pipelines/v1.0/PipelineRuns?limit=x", 400, "BadRequest"),
    ],
)
def test_every_error_is_json_unknown_methods_included(served, method, path, status, code):
    _, _, _, url = served
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    connection.request(method, path, headers={"Authorization": f"Bearer {TOKENS[url]}"})
    response = connection.getresponse()
    assert response.status == status
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read())["error"]["code"] == code
    connection.close()


# --- ParallelStep settings ------------------------------------------------------------------


@pytest.fixture
def served_parallel(toy):
    """The toy workspace with a ParallelStep whose mini_batch_size is a pipeline parameter."""
    backend = toy.backend
    score = toy.root / "steps" / "score"
    score.mkdir()
    (score / "score.py").write_text(
        "def init():\n    pass\n\n\ndef run(batch):\n    return [str(p) for p in batch]\n"
    )
    scoring = Pipeline(
        "scoring",
        [
            ParallelStep(
                "score",
                score,
                inputs=[DatasetInput("toy-data")],
                output=Output("scores"),
                mini_batch_size=Param("batch", "1"),
                environment="toy-env",
            )
        ],
    )
    backend.build([scoring], plan=False)
    backend.publish([scoring], plan=False)
    service = LocalService(backend.ws.root)
    server = RestServer(service, 0)
    service.start(schedules=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    TOKENS[server.url] = token_of(backend.ws.root)
    yield backend, server.url
    server.shutdown()
    server.server_close()
    service.stop()


def test_a_parallel_step_setting_is_checked_before_the_run_is_queued(served_parallel):
    backend, url = served_parallel
    status, answer = submit(url, "scoring", {"ParameterAssignments": {"batch": "5 files"}})
    assert status == 400
    assert "parameter 'batch'" in answer["error"]["message"]
    assert "mini_batch_size '5 files'" in answer["error"]["message"]
    assert backend.store.one("SELECT COUNT(*) FROM runs")[0] == 0
    status, answer = submit(url, "scoring", {"ParameterAssignments": {"batch": "2"}})
    assert status == 200
    run = wait_for(url, answer["Id"])
    assert run["Status"]["StatusCode"] == "Completed", run["Status"]["StatusDetail"]


# --- several runs at once -------------------------------------------------------------------


def test_runs_execute_side_by_side_and_their_steps_share_the_slots(toy):
    """Two runs at once, one step slot: both runs are Running, never two steps."""
    backend = toy.backend
    nap = toy.root / "steps" / "nap"
    nap.mkdir()
    (nap / "main.py").write_text("import sys, time\ntime.sleep(float(sys.argv[2]))\n")
    naps = Pipeline(
        "naps",
        [
            ScriptStep("nap", nap, arguments=["--s", Param("s", 1.5)], allow_reuse=False),
            ScriptStep("nap2", nap, arguments=["--s", Param("s", 1.5), "--out", Output("o")],
                       allow_reuse=False),
        ],
    )  # fmt: skip
    backend.build([naps], plan=False)
    backend.publish([naps], plan=False)
    service = LocalService(backend.ws.root, max_concurrent_runs=2, step_slots=1)
    service.start(schedules=False)
    try:
        runs = [service.submit("naps", None, {}, {"type": "HTTP"})[0] for _ in range(2)]
        both_running, most_steps = False, 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with service.store() as store:
                statuses = [r[0] for r in store.all("SELECT status FROM runs")]
                steps = store.one("SELECT COUNT(*) FROM step_runs WHERE status='Running'")[0]
            both_running |= statuses == ["Running", "Running"]
            most_steps = max(most_steps, steps)
            if all(s in FINISHED for s in statuses):
                break
            time.sleep(0.05)
        assert statuses == ["Completed", "Completed"], runs
        assert both_running and most_steps == 1
    finally:
        service.stop()
