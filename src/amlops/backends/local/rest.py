"""The REST face of the local service, shaped like Azure ML v1's pipeline endpoint API.

``POST /pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/<endpoint>`` takes the body
Azure ML takes (``ExperimentName``, ``ParameterAssignments``, ``DataPathAssignments`` of
``{"DataStoreName", "RelativePath"}``) and ``?pipelineVersion=N``, and answers with the run's
``Id``. It listens on 127.0.0.1 only and asks for no token: it is a development service on
one machine, not something to expose.
"""

from __future__ import annotations

import json
import re
from argparse import Namespace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from amlops.backends.local.endpoints import SUBMIT_PATH, NotPublished
from amlops.backends.local.queries import WorkspaceReader
from amlops.backends.local.service import LocalService
from amlops.errors import AmlopsError, ConfigError
from amlops.spec import SpecError

API = "/pipelines/v1.0"
MAX_BODY = 1 << 20
GET_ROUTES = (
    ("/PipelineEndpoints", "endpoints", "list"),
    ("/PipelineEndpoints/([^/]+)", "endpoints", "show"),
    ("/PipelineRuns", "runs", "list"),
    ("/PipelineRuns/([^/]+)", "runs", "show"),
    ("/Schedules", "schedules", "list"),
    ("/Schedules/([^/]+)", "schedules", "show"),
)
SUBMIT_KEYS = {"ExperimentName", "Description", "ParameterAssignments", "DataPathAssignments"}


class BadRequest(Exception):
    pass


class RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: LocalService, port: int, host: str = "127.0.0.1"):
        self.reader: WorkspaceReader | None = None  # server_close runs if binding fails
        super().__init__((host, port), _Handler)
        self.service = service
        # One read handle for every GET, whichever request thread answers it.
        self.reader = WorkspaceReader.open(service.ws.root, self.url, shared=True)

    def server_close(self) -> None:
        super().server_close()
        if self.reader is not None:
            self.reader.close()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: RestServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _answer(self, route) -> None:
        url = urlsplit(self.path)
        try:
            status, body = route(unquote(url.path).rstrip("/"), parse_qs(url.query))
        except BadRequest as exc:
            status, body = HTTPStatus.BAD_REQUEST, _error("BadRequest", str(exc))
        except NotPublished as exc:
            status, body = HTTPStatus.NOT_FOUND, _error("NotFound", str(exc))
        except (AmlopsError, SpecError) as exc:
            status, body = HTTPStatus.BAD_REQUEST, _error("BadRequest", str(exc))
        except Exception as exc:  # a bug: answer, log it, and keep serving
            self.server.service.say(f"error answering {self.command} {url.path}: {exc!r}")
            message = f"{type(exc).__name__}: {exc}"
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, _error("InternalError", message)
        data = json.dumps(body, indent=2, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            # The request body may be unread: the connection cannot carry another request.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _get(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/health":
            return HTTPStatus.OK, {"status": "ok"}
        for pattern, noun, verb in GET_ROUTES:
            if m := re.fullmatch(API + pattern, path):
                return HTTPStatus.OK, self._query(noun, verb, *m.groups())
        return HTTPStatus.NOT_FOUND, _error("NotFound", f"no such resource: GET {path}")

    def _query(self, noun: str, verb: str, name: str | None = None) -> Any:
        try:
            args = Namespace(name=name, pipeline=None, limit=50, version=None)
            assert self.server.reader is not None
            return self.server.reader.query(noun, verb, args)
        except ConfigError as exc:  # an unknown name
            raise NotPublished(str(exc)) from None

    def _post(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        prefix = SUBMIT_PATH.rstrip("/") + "/"
        if not path.startswith(prefix) or "/" in path[len(prefix) :]:
            return HTTPStatus.NOT_FOUND, _error("NotFound", f"no such resource: POST {path}")
        name = path[len(prefix) :]
        body = self._body()
        parameters = _assignments(body)
        version = (query.get("pipelineVersion") or [None])[0]
        origin = {"type": "HTTP"}
        for key, field in (("ExperimentName", "experiment"), ("Description", "description")):
            if body.get(key):
                origin[field] = str(body[key])
        run_id, version = self.server.service.submit(name, version, parameters, origin)
        return HTTPStatus.OK, {
            "Id": run_id,
            "Status": "Queued",
            "PipelineEndpointName": name,
            "PipelineVersion": version,
            "RunUrl": f"{self.server.url}{API}/PipelineRuns/{run_id}",
        }

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if length > MAX_BODY:
            raise BadRequest(f"request body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise BadRequest(f"request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        unknown = sorted(set(body) - SUBMIT_KEYS)
        if unknown:
            raise BadRequest(
                f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(SUBMIT_KEYS))})"
            )
        return body

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        self.server.service.say(f"{self.address_string()} {format % args}")


def _assignments(body: dict[str, Any]) -> dict[str, Any]:
    """ParameterAssignments and DataPathAssignments as one mapping of parameter values."""
    values = body.get("ParameterAssignments") or {}
    if not isinstance(values, dict):
        raise BadRequest("ParameterAssignments must be an object of name: value")
    out = dict(values)
    datapaths = body.get("DataPathAssignments") or {}
    if not isinstance(datapaths, dict):
        raise BadRequest("DataPathAssignments must be an object of name: DataPath")
    for name, value in datapaths.items():
        if not isinstance(value, dict) or not {"DataStoreName", "RelativePath"} <= set(value):
            raise BadRequest(
                f'DataPathAssignments.{name}: use {{"DataStoreName": ..., "RelativePath": ...}}'
            )
        out[name] = f"{value['DataStoreName']}/{str(value['RelativePath']).lstrip('/')}"
    return out


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
