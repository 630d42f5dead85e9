"""The local service as an Azure ML v2 batch endpoint, over real HTTP on 127.0.0.1: the documented
REST body, and azure-ai-ml's own ``MLClient.batch_endpoints.invoke`` in a subprocess pointed at
the service as a custom cloud (no fake: the SDK talks to the local service only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from amlops.backends.local.rest import RestServer
from amlops.backends.local.service import LocalService
from amlops.spec import DataPathParam, Output, Param, Pipeline, ScriptStep

STEP = """\
import json, sys
from pathlib import Path

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
data = Path(args["--data"])
Path(args["--out"], "seen.json").write_text(json.dumps(
    {"alpha": args["--alpha"], "files": sorted(p.name for p in data.iterdir())}))
"""


@pytest.fixture
def served(toy):
    """A published pipeline ``toy_v2`` (batch endpoint ``toy-v2``) reading a Param and a
    DataPathParam, with the service on a free port."""
    backend, root = toy.backend, toy.root
    step_dir = root / "steps" / "v2"
    step_dir.mkdir()
    (step_dir / "main.py").write_text(STEP)
    for folder, name in (("in/default", "d.csv"), ("in/other", "o.csv")):
        path = backend.ws.datastore("workspaceblobstore") / folder
        path.mkdir(parents=True)
        (path / name).write_text("x\n1\n")
    pipeline = Pipeline(
        "toy_v2",
        [
            ScriptStep(
                name="look",
                source_dir=step_dir,
                script="main.py",
                arguments=[
                    "--data", DataPathParam("data", "workspaceblobstore", "in/default"),
                    "--alpha", Param("alpha", 0.5),
                    "--out", Output("seen"),
                ],
                environment="toy-env",
            )
        ],
    )  # fmt: skip
    backend.build([pipeline], plan=False)
    backend.publish([pipeline], plan=False)
    service = LocalService(backend.ws.root)
    server = RestServer(service, 0)
    service.start(schedules=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield backend, server.url, (backend.ws.root / "token").read_text().strip()
    server.shutdown()
    server.server_close()
    service.stop()


def post(url: str, token: str, body: object, headers: dict | None = None):
    import requests

    return requests.post(
        url, json=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=30
    )


def finished(url: str, token: str, job: dict) -> dict:
    import requests

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = requests.get(
            f"{url}/batchEndpoints/toy-v2/jobs/{job['name']}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        job = answer.json()
        if job["properties"]["status"] in ("Completed", "Failed", "Canceled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job['name']} did not finish: {job}")


def seen(backend, job: dict) -> dict:
    row = backend.store.one(
        "SELECT outputs FROM step_runs WHERE run_id=? AND step='look'", (job["name"],)
    )
    folder = backend.ws.abs(json.loads(row["outputs"])["seen"])
    return json.loads((folder / "seen.json").read_text())


def test_the_documented_rest_body_runs_the_pipeline_with_its_inputs(served):
    backend, url, token = served
    body = {
        "properties": {
            "InputData": {
                "alpha": {"JobInputType": "Literal", "Value": "0.75"},
                "data": {
                    "JobInputType": "UriFolder",
                    "Uri": "azureml://datastores/workspaceblobstore/paths/in/other",
                },
            }
        }
    }
    answer = post(f"{url}/batchEndpoints/toy-v2/jobs", token, body)
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["type"] == "Microsoft.MachineLearningServices/workspaces/jobs"
    assert job["properties"]["jobType"] == "Pipeline"
    assert job["properties"]["status"] in ("Queued", "Running", "Completed")
    assert job["properties"]["experimentName"] == "toy-v2"
    job = finished(url, token, job)
    assert job["properties"]["status"] == "Completed", job["properties"]["error"]
    assert seen(backend, job) == {"alpha": "0.75", "files": ["o.csv"]}
    # The same run, as the v1-shaped API shows it.
    run = backend.store.one("SELECT parameters FROM runs WHERE run_id=?", (job["name"],))
    assert json.loads(run["parameters"])["data"] == "workspaceblobstore/in/other"


MISSING = "azureml://datastores/workspaceblobstore/paths/missing"


@pytest.mark.parametrize(
    "body, names",
    [
        ({"properties": {"InputData": {"nope": {"JobInputType": "Literal", "Value": 1}}}}, "nope"),
        ({"properties": {"InputData": {"alpha": {"JobInputType": "Literal", "Value": "x"}}}},
         "alpha"),
        ({"properties": {"InputData": {"data": {"JobInputType": "UriFolder",
                                                "Uri": "azureml:my-data:1"}}}},
         "InputData.data.Uri"),
        ({"properties": {"InputData": {"data": {"JobInputType": "Table", "Uri": "x"}}}},
         "InputData.data.JobInputType"),
        ({"properties": {"InputData": {"data": {"JobInputType": "UriFolder", "Uri": MISSING}}}},
         "data"),
        ({"properties": {"InputData": {"data": {"JobInputType": "Literal", "Value": "x/y"}}}},
         "InputData.data: a data input"),
        ({"properties": {"InputData": {"alpha": {"JobInputType": "UriFolder", "Uri": MISSING}}}},
         "InputData.alpha: a literal input"),
        ({"properties": {"OutputData": {}}}, "properties.outputdata"),
        ({"properties": {"properties": {"experimentName": "no spaces"}}}, "experimentName"),
        ({"InputData": {}}, "inputdata: unknown key"),
    ],
)  # fmt: skip
def test_a_bad_invocation_is_refused_naming_the_key_and_queues_nothing(served, body, names):
    backend, url, token = served
    answer = post(f"{url}/batchEndpoints/toy-v2/jobs", token, body)
    assert answer.status_code == 400, answer.text
    assert names in answer.json()["error"]["message"]
    assert backend.store.one("SELECT COUNT(*) FROM runs")[0] == 0


def test_unknown_endpoints_and_deployments_are_404_and_a_token_is_needed(served):
    backend, url, token = served
    assert post(f"{url}/batchEndpoints/toy_v2/jobs", token, {"properties": {}}).status_code == 404
    answer = post(
        f"{url}/batchEndpoints/toy-v2/jobs",
        token,
        {"properties": {}},
        {"azureml-model-deployment": "version-7"},
    )
    assert answer.status_code == 404
    assert post(f"{url}/batchEndpoints/toy-v2/jobs", "wrong", {"properties": {}}).status_code == 401


CLIENT = """\
import json, sys, time
from azure.ai.ml import Input, MLClient
from azure.core.credentials import AccessToken

url, token = sys.argv[1], sys.argv[2]


class LocalToken:
    # The local service's token where an Entra token would be (amlops token prints it).
    def get_token(self, *scopes, **kwargs):
        return AccessToken(token, int(time.time()) + 3600)


client = MLClient(
    LocalToken(), "00000000-0000-0000-0000-000000000000", "local", "local",
    cloud="amlops-local",
    cloud_metadata={
        "azure_portal": url, "resource_manager": url + "/",
        "active_directory": url, "aml_resource_id": url + "/",
        "storage_endpoint": "core.windows.net", "registry_discovery_endpoint": url,
    },
)
listed = [e.name for e in client.batch_endpoints.list()]
endpoint = client.batch_endpoints.get("toy-v2")
job = client.batch_endpoints.invoke(
    endpoint_name="toy-v2",
    deployment_name="version-0",
    experiment_name="from-the-sdk",
    inputs={
        "alpha": Input(type="number", default=0.25),
        "data": Input(type="uri_folder",
                      path="azureml://datastores/workspaceblobstore/paths/in/other"),
    },
)
print(json.dumps({"listed": listed, "scoring_uri": endpoint.scoring_uri,
                  "default": endpoint.defaults.deployment_name,
                  "job": job._to_dict()}))
"""


def test_azure_ai_mls_own_invoke_runs_the_pipeline(served, tmp_path):
    """azure-ai-ml builds and sends the requests itself: no part of it is replaced."""
    pytest.importorskip("azure.ai.ml")
    backend, url, token = served
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE")}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(script), url, token],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["listed"] == ["toy-v2"]
    assert answer["scoring_uri"] == f"{url}/batchEndpoints/toy-v2/jobs"
    assert answer["default"] == "version-0"
    job = answer["job"]
    assert job["type"] == "Microsoft.MachineLearningServices/workspaces/jobs"
    job = finished(url, token, job)
    assert job["properties"]["status"] == "Completed", job["properties"]["error"]
    assert job["properties"]["experimentName"] == "from-the-sdk"
    assert seen(backend, job) == {"alpha": "0.25", "files": ["o.csv"]}
