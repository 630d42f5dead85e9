"""evaluate and register look up the production model: only "not found" means there is none.

Not-found and its look-alikes run against a real MLflow registry (SQLite, in tmp). The other
registry errors come from MLflow's own REST client talking to a stand-in server on loopback:
the Azure ML registry is MLflow's RestStore (azureml-mlflow subclasses it), so a 403 or a
404 from an endpoint the server lacks reaches the step as the same MlflowException it would
on Azure. The server is the only fake here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest

# MLflow's own SQL store trips a SQLAlchemy deprecation while it sets up; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

STEPS = Path(__file__).resolve().parents[2] / "pipelines" / "steps"
MODEL = "demand"


def load_main(step: str):
    """A step's main.py, importable as the runner makes it: its own folder on sys.path."""
    sys.path.insert(0, str(STEPS / step))
    try:
        spec = importlib.util.spec_from_file_location(f"step_{step}_main", STEPS / step / "main.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(STEPS / step))
        sys.modules.pop(step, None)  # evaluate/main.py imports its sibling evaluate.py
    return module


STEP_MAINS = {step: load_main(step) for step in ("evaluate", "register")}
lookup = pytest.mark.parametrize("step", STEP_MAINS)


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory) -> str:
    # One SQLite store for the module: creating one runs MLflow's migrations (seconds).
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def sqlite_client(registry_uri):
    return mlflow.MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)


@pytest.fixture
def model_name(request) -> str:
    # A fresh registered-model name per test, so tests sharing the store do not meet.
    return f"{MODEL}-{request.node.name}".replace("[", "-").replace("]", "")


@lookup
def test_no_registered_model_is_no_production_model(step, sqlite_client, model_name):
    assert STEP_MAINS[step].production_version(sqlite_client, model_name) is None


@lookup
def test_registered_model_without_the_alias_is_no_production_model(
    step, sqlite_client, model_name, tmp_path
):
    # e.g. register failed between adding the version and setting the alias
    sqlite_client.create_registered_model(model_name)
    sqlite_client.create_model_version(model_name, source=str(tmp_path), run_id=None)
    assert STEP_MAINS[step].production_version(sqlite_client, model_name) is None


@lookup
def test_the_aliased_version_is_returned(step, sqlite_client, model_name, tmp_path):
    sqlite_client.create_registered_model(model_name)
    for _ in range(2):
        sqlite_client.create_model_version(model_name, source=str(tmp_path), run_id=None)
    sqlite_client.set_registered_model_alias(model_name, "production", "1")
    assert str(STEP_MAINS[step].production_version(sqlite_client, model_name).version) == "1"


@lookup
def test_an_invalid_request_is_not_taken_for_a_missing_alias(step, sqlite_client):
    # INVALID_PARAMETER_VALUE is also how the store reports a missing alias; a bad name
    # must still fail, not promote.
    with pytest.raises(SystemExit) as exited:
        STEP_MAINS[step].production_version(sqlite_client, "bad/name")
    assert str(exited.value.code).startswith(f"{step}: cannot read the production model")
    assert "'bad/name'" in str(exited.value.code)
    assert "INVALID_PARAMETER_VALUE" in str(exited.value.code)


class Registry(BaseHTTPRequestHandler):
    """Answers every request with the class's canned status and body."""

    status = 200
    body = "{}"
    content_type = "application/json"
    paths: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).paths.append(self.path)
        payload = self.body.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def rest_registry(monkeypatch):
    """(handler class to configure, MLflow client whose registry is the stand-in server)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    handler = type("Handler", (Registry,), {"paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@lookup
def test_rest_not_found_is_no_production_model(step, rest_registry):
    handler, client = rest_registry
    handler.status = 404
    handler.body = json.dumps(
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Model {MODEL} not found."}
    )
    assert STEP_MAINS[step].production_version(client, MODEL) is None
    assert handler.paths[0].startswith("/api/2.0/mlflow/registered-models/alias?")


@lookup
def test_permission_denied_fails_the_step_in_one_line(step, rest_registry):
    handler, client = rest_registry
    handler.status = 403
    handler.body = json.dumps(
        {"error_code": "PERMISSION_DENIED", "message": "The caller may not\nread models."}
    )
    with pytest.raises(SystemExit) as exited:
        STEP_MAINS[step].production_version(client, MODEL)
    assert exited.value.code == (
        f"{step}: cannot read the production model of '{MODEL}' from the MLflow registry: "
        "PERMISSION_DENIED: The caller may not read models."
    )


@lookup
def test_a_registry_without_the_alias_api_fails_the_step(step, rest_registry):
    # A server that lacks the endpoint answers 404 without an MLflow error body: MLflow
    # reports ENDPOINT_NOT_FOUND, which says nothing about the model.
    handler, client = rest_registry
    handler.status = 404
    handler.body = "<html>Not Found</html>"
    handler.content_type = "text/html"
    with pytest.raises(SystemExit) as exited:
        STEP_MAINS[step].production_version(client, MODEL)
    message = str(exited.value.code)
    assert "\n" not in message
    assert message.startswith(f"{step}: cannot read the production model of '{MODEL}'")
    assert "ENDPOINT_NOT_FOUND" in message


def test_register_does_not_register_when_production_cannot_be_read(
    rest_registry, tmp_path, monkeypatch, capsys
):
    handler, client = rest_registry
    handler.status = 403
    handler.body = json.dumps({"error_code": "PERMISSION_DENIED", "message": "denied"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client._registry_uri)
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / "evaluation.json").write_text(
        json.dumps({"register": True, "production_version": None, "candidate": {"rmse": 1.0}})
    )
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="PERMISSION_DENIED: denied"):
        STEP_MAINS["register"].main(
            [
                *("--model", str(tmp_path / "model"), "--evaluation", str(evaluation)),
                *("--model_name", MODEL, "--dataset", "sales", "--output", str(out)),
            ]
        )
    assert not out.exists()  # no registration.json: nothing was registered or kept
    assert all("/registered-models/alias" in p for p in handler.paths)  # only the lookup
