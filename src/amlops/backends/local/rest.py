"""The REST face of the local service, shaped like Azure ML v1's pipeline endpoint API, and
its web page; Starlette on uvicorn, imported only by ``amlops serve``.

``POST /pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/<endpoint>`` takes the body
Azure ML takes (``ExperimentName``, required; ``ParameterAssignments``; ``DataPathAssignments``
of ``{"DataStoreName", "RelativePath"}``) and ``?pipelineVersion=N``, and answers with the run
document GET answers too (``Id``, ``Status``, ...; see amlops.backends.local.views). Each
endpoint is also the v2 batch endpoint the azureml_v2 backend would create
(amlops.backends.local.batch_endpoints): ``POST /batchEndpoints/<name>/jobs``, and the resource
manager GETs azure-ai-ml makes before it invokes.

Every route but ``/health`` asks for the workspace's token (amlops.backends.local.token):
``Authorization: Bearer <token>``, or for the page (GET only) the cookie that
``/?token=<token>`` sets. It listens on 127.0.0.1 only: a development service on one machine.
Every answer is JSON, errors included (``{"error": {"code", "message"}}``), but the page's
own files.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from argparse import Namespace
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amlops.backends.local import batch_endpoints, endpoints, views
from amlops.backends.local.endpoints import NotPublished
from amlops.backends.local.queries import WorkspaceReader
from amlops.backends.local.service import LocalService
from amlops.backends.local.store import Store
from amlops.backends.local.token import ensure_token, matches
from amlops.errors import AmlopsError, ConfigError
from amlops.spec import SpecError

API = views.API
ARM = batch_endpoints.ARM
MAX_BODY = 1 << 20
# A body over MAX_BODY but under this is read and dropped before the 413: a client that sends
# its whole body before reading the answer (urllib, requests) sees the 413, not a broken pipe.
DRAIN_LIMIT = 16 * MAX_BODY
SUBMIT_KEYS = {"ExperimentName", "Description", "ParameterAssignments", "DataPathAssignments"}
# Azure ML's rule for experiment names.
EXPERIMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,255}$")
WEB = Path(__file__).parent / "web"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
GRACEFUL_S = 5


class BadRequest(Exception):
    pass


class TooLarge(Exception):
    pass


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, indent=2, default=str).encode()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": {"code": code, "message": message}}, status, headers)


class RestServer:
    """The app on a socket bound at once (so a taken port fails here, and port 0 learns its
    real number), served by uvicorn until ``shutdown`` or a signal."""

    def __init__(
        self, service: LocalService, port: int, host: str = "127.0.0.1", token: str | None = None
    ):
        self.service = service
        self.token = token or ensure_token(service.ws.root)
        self.reader: WorkspaceReader | None = None
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(128)
            # One read handle for every GET, whichever thread answers it.
            self.reader = WorkspaceReader.open(service.ws.root, self.url, shared=True)
        except BaseException:
            self.server_close()
            raise
        self.app = create_app(self)
        config = uvicorn.Config(
            self.app,
            http="h11",
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_S,
        )
        self._server = uvicorn.Server(config)
        self._done = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    @property
    def page_url(self) -> str:
        """The page's address with the token: opening it once sets the cookie."""
        return f"{self.url}/?token={self.token}"

    def serve_forever(self) -> None:
        """Serve until ``shutdown`` (or, in the main thread, SIGINT/SIGTERM: uvicorn stops
        gracefully, then raises the signal again for the caller's handler)."""
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._done.set()

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._done.wait()

    def server_close(self) -> None:
        self.socket.close()
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    # --- reading, one request at a time on the shared handle --------------------------------

    def read(self, view: Callable[..., Any], *args: Any) -> Any:
        reader = self.reader
        assert reader is not None
        with reader._lock:
            return view(reader.store, reader.ws, *args)

    def query(self, noun: str, verb: str, name: str | None = None) -> Any:
        assert self.reader is not None
        try:
            args = Namespace(name=name, pipeline=None, limit=50, version=None)
            return self.reader.query(noun, verb, args)
        except ConfigError as exc:  # an unknown name
            raise NotPublished(str(exc)) from None

    # --- submitting -------------------------------------------------------------------------

    def submit(self, name: str, version: str | None, body: dict[str, Any]) -> dict[str, Any]:
        _check_submit(body)
        parameters = _assignments(body)
        origin = {"type": "HTTP", "experiment": body["ExperimentName"]}
        if body.get("Description"):
            origin["description"] = body["Description"]
        ws = self.service.ws
        _, _, document = self.service.submit(
            name,
            version,
            parameters,
            origin,
            lambda store, run_id: views.run_document(
                store, ws, views.run_row(store, run_id), self.url
            ),
        )
        return document

    # --- the v2 batch endpoint face (amlops.backends.local.batch_endpoints) -----------------

    def invoke(self, name: str, deployment: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """A v2 batch endpoint invocation: the same run a v1-shaped submit queues."""
        invocation = batch_endpoints.read_invocation(body)
        version = batch_endpoints.version_of(deployment)
        local = self.read(lambda store, ws: batch_endpoints.local_endpoint(store, name))
        pipeline, _ = self.read(lambda store, ws: endpoints.published(ws, store, local, version))
        batch_endpoints.check_kinds(pipeline, invocation)
        experiment = invocation.experiment if invocation.experiment is not None else name
        _check_experiment(experiment, "properties.properties.experimentName")
        origin = {"type": "HTTP", "experiment": experiment}
        _, _, document = self.service.submit(
            local,
            version,
            invocation.parameters,
            origin,
            lambda store, run_id: self._job_document(store, name, run_id),
        )
        return document

    def batch_job(self, name: str, run_id: str) -> dict[str, Any]:
        return self.read(lambda store, ws: self._job_document(store, name, run_id))

    def _job_document(self, store: Store, name: str, run_id: str) -> dict[str, Any]:
        local = batch_endpoints.local_endpoint(store, name)
        row = views.run_row(store, run_id)
        if json.loads(row["origin"] or "{}").get("endpoint") != local:
            raise views.NotFound(f"batch endpoint {name!r} has no job {run_id!r}")
        return batch_endpoints.job_document(row, self.url, f"{self.url}{API}/PipelineRuns/{run_id}")

    def batch_endpoint(self, name: str | None, arm_path: str, deployments: bool) -> Any:
        def view(store, ws):
            if name is None:  # the list, one page
                found = batch_endpoints.batch_endpoint_names(store)
                return {
                    "value": [
                        batch_endpoints.endpoint_document(store, local, self.url, f"{arm_path}/{n}")
                        for n, local in sorted(found.items())
                    ]
                }
            local = batch_endpoints.local_endpoint(store, name)
            if deployments:
                return batch_endpoints.deployment_documents(store, local, arm_path)
            return batch_endpoints.endpoint_document(store, local, self.url, arm_path)

        return self.read(view)


# --- the app ---------------------------------------------------------------------------------


def create_app(server: RestServer) -> ASGIApp:
    async def health(request: Request) -> Response:
        return JSON({"status": "ok"})

    async def page(request: Request) -> Response:
        return FileResponse(WEB / "index.html", media_type="text/html", headers=_NO_STORE)

    async def page_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in PAGE_FILES:
            raise HTTPException(404)
        return FileResponse(WEB / name, media_type=PAGE_FILES[name], headers=_NO_STORE)

    def query(noun: str, verb: str) -> Callable:
        async def endpoint(request: Request) -> Response:
            name = request.path_params.get("name")
            return JSON(await run_in_threadpool(server.query, noun, verb, name))

        return endpoint

    async def runs(request: Request) -> Response:
        limit = _int_query(request, "limit", 50)
        pipeline = request.query_params.get("pipeline")
        found = await run_in_threadpool(
            server.read,
            lambda store, ws: views.run_documents(
                store, ws, server.url, limit=limit, pipeline=pipeline
            ),
        )
        return JSON(found)

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        found = await run_in_threadpool(
            server.read,
            lambda store, ws: views.run_document(
                store, ws, views.run_row(store, run_id), server.url
            ),
        )
        return JSON(found)

    async def submit(request: Request) -> Response:
        body = await _json_body(request)
        version = request.query_params.get("pipelineVersion")
        name = request.path_params["name"]
        return JSON(await run_in_threadpool(server.submit, name, version, body))

    async def invoke(request: Request) -> Response:
        body = await _json_body(request, '{"properties": {"InputData": {...}}}')
        deployment = request.headers.get(batch_endpoints.DEPLOYMENT_HEADER)
        name = request.path_params["name"]
        return JSON(await run_in_threadpool(server.invoke, name, deployment, body))

    async def batch_job(request: Request) -> Response:
        p = request.path_params
        return JSON(await run_in_threadpool(server.batch_job, p["name"], p["run_id"]))

    def batch_endpoint(deployments: bool) -> Callable:
        async def endpoint(request: Request) -> Response:
            name, path = request.path_params.get("name"), request.url.path
            found = await run_in_threadpool(server.batch_endpoint, name, path, deployments)
            return JSON(found)

        return endpoint

    async def overview(request: Request) -> Response:
        found = await run_in_threadpool(server.read, views.overview, server.url, time.time())
        return JSON(found)

    async def graph(request: Request) -> Response:
        found = await run_in_threadpool(server.read, views.graph, request.path_params["run_id"])
        return JSON(found)

    async def step(request: Request) -> Response:
        p = request.path_params
        found = await run_in_threadpool(server.read, views.step_detail, p["run_id"], p["step"])
        return JSON(found)

    async def logs(request: Request) -> Response:
        p = request.path_params
        offset = _int_query(request, "offset", 0)
        found = await run_in_threadpool(
            server.read, views.log_chunk, p["run_id"], p["step"], p["stream"], offset
        )
        return JSON(found)

    routes = [
        Route("/health", health),
        Route("/", page),
        Route("/ui/{name}", page_file),
        Route("/ui/api/overview", overview),
        Route("/ui/api/runs/{run_id}/graph", graph),
        Route("/ui/api/runs/{run_id}/steps/{step}", step),
        Route("/ui/api/runs/{run_id}/steps/{step}/logs/{stream}", logs),
        Route(f"{API}/PipelineEndpoints", query("endpoints", "list")),
        Route(f"{API}/PipelineEndpoints/{{name}}", query("endpoints", "show")),
        Route(f"{API}/PipelineRuns", runs),
        Route(
            f"{API}/PipelineRuns/PipelineEndpointSubmit/Name/{{name}}", submit, methods=["POST"]
        ),  # fmt: skip
        Route(f"{API}/PipelineRuns/{{run_id}}", run),
        Route(f"{API}/Schedules", query("schedules", "list")),
        Route(f"{API}/Schedules/{{name}}", query("schedules", "show")),
        Route(batch_endpoints.JOBS, invoke, methods=["POST"]),
        Route(batch_endpoints.JOBS + "/{run_id}", batch_job),
        Route(f"{ARM}/batchEndpoints", batch_endpoint(deployments=False)),
        Route(f"{ARM}/batchEndpoints/{{name}}", batch_endpoint(deployments=False)),
        Route(f"{ARM}/batchEndpoints/{{name}}/deployments", batch_endpoint(deployments=True)),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        where = f"{request.method} {request.url.path}"
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{where}: method not allowed (allowed: {allowed})"
            return _error(405, "MethodNotAllowed", message, dict(exc.headers or {}))
        if exc.status_code == HTTPStatus.NOT_FOUND:
            return _error(404, "NotFound", f"no such resource: {where}")
        phrase = HTTPStatus(exc.status_code).phrase
        return _error(exc.status_code, phrase.replace(" ", ""), f"{where}: {exc.detail}")

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "NotFound", str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(400, "BadRequest", str(exc))

    async def too_large(request: Request, exc: Exception) -> Response:
        return _error(413, "RequestTooLarge", str(exc))

    async def internal(request: Request, exc: Exception) -> Response:
        # A bug: answer, log it, and keep serving.
        where = f"{request.method} {request.url.path}"
        server.service.say(f"error answering {where}: {exc!r}")
        return _error(500, "InternalError", f"{type(exc).__name__}: {exc}")

    handlers = {
        HTTPException: http_error,
        NotPublished: not_found,
        views.NotFound: not_found,
        BadRequest: bad_request,
        batch_endpoints.BadInvocation: bad_request,
        AmlopsError: bad_request,
        SpecError: bad_request,
        TooLarge: too_large,
        Exception: internal,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    return _Guard(app, server)


_NO_STORE = {"Cache-Control": "no-store"}


class _Guard:
    """Every request but ``/health`` shows the token: as a bearer header, or (GET, from the
    page) as the cookie ``/?token=...`` set. Also: trailing slashes are ignored, and
    submissions and refusals are logged."""

    def __init__(self, app: ASGIApp, server: RestServer):
        self.app = app
        self.server = server

    @property
    def cookie(self) -> str:
        # Cookies are per host, not per port: two services on one machine each keep their own.
        return f"amlops_token_{self.server.port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        response = self._gate(scope)
        if response is not None:
            await response(scope, receive, sending)
        else:
            await self.app(scope, receive, sending)
        if scope["method"] not in ("GET", "HEAD") or status >= 400:
            client = scope.get("client") or ("?", 0)
            self.server.service.say(f"{client[0]} {scope['method']} {scope['path']} {status}")

    def _gate(self, scope: Scope) -> Response | None:
        """None to let the request through, else the answer that refuses (or logs in)."""
        path, method = scope["path"], scope["method"]
        if path == "/health":
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = self.server.token
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and matches(given.strip(), token):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path == "/" and "token" in query and method in ("GET", "HEAD"):
            if not matches(query["token"][0], token):
                return _error(401, "Unauthorized", "wrong token (see: amlops token)")
            # As Jupyter does: the token becomes a cookie, and leaves the address bar.
            response = RedirectResponse("/", status_code=303, headers=_NO_STORE)
            response.set_cookie(self.cookie, token, httponly=True, samesite="lax", path="/")
            return response
        if method in ("GET", "HEAD"):
            cookies = SimpleCookie()
            try:
                cookies.load(headers.get("cookie", ""))
            except Exception:  # a malformed Cookie header is just no cookie
                cookies = SimpleCookie()
            if self.cookie in cookies and matches(cookies[self.cookie].value, token):
                return None
        message = (
            "wrong token" if "authorization" in headers else "this service needs a token"
        ) + (
            ": send 'Authorization: Bearer <token>' (the token: amlops token), "
            "or open the page link amlops serve prints"
        )
        return _error(401, "Unauthorized", message, {"WWW-Authenticate": "Bearer"})


# --- request bodies ------------------------------------------------------------------------------


async def _json_body(request: Request, least: str = '{"ExperimentName": "..."}') -> dict[str, Any]:
    """The request's JSON object, however it was sent (Content-Length or chunked)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a number")
        if int(declared) > DRAIN_LIMIT:
            raise TooLarge(f"request body over {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_LIMIT:
            break
        if size <= MAX_BODY:
            chunks.append(chunk)
    if size > MAX_BODY:
        raise TooLarge(f"request body over {MAX_BODY} bytes")
    raw = b"".join(chunks).strip()
    if not raw:
        raise BadRequest(f"request body is empty: send a JSON object, at least {least}")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _check_submit(body: dict[str, Any]) -> None:
    unknown = sorted(set(body) - SUBMIT_KEYS)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(SUBMIT_KEYS))})")
    name = body.get("ExperimentName")
    if name is None:
        raise BadRequest("ExperimentName: required (the experiment to record the run under)")
    _check_experiment(name, "ExperimentName")
    if body.get("Description") is not None and not isinstance(body["Description"], str):
        raise BadRequest("Description: must be a string")


def _check_experiment(name: Any, key: str) -> None:
    if not isinstance(name, str) or not EXPERIMENT_NAME_RE.match(name):
        raise BadRequest(
            f"{key}: {name!r} must be 1-256 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )


def _assignments(body: dict[str, Any]) -> dict[str, Any]:
    """ParameterAssignments and DataPathAssignments as one mapping of parameter values."""
    values = body.get("ParameterAssignments") or {}
    if not isinstance(values, dict):
        raise BadRequest("ParameterAssignments must be an object of name: value")
    for name, value in values.items():
        if not isinstance(value, str | int | float | bool):
            raise BadRequest(
                f"ParameterAssignments.{name}: must be a string, number or boolean, "
                f"not {type(value).__name__}"
            )
    out = dict(values)
    datapaths = body.get("DataPathAssignments") or {}
    if not isinstance(datapaths, dict):
        raise BadRequest("DataPathAssignments must be an object of name: DataPath")
    for name, value in datapaths.items():
        if (
            not isinstance(value, dict)
            or not {"DataStoreName", "RelativePath"} <= set(value)
            or not all(isinstance(value[k], str) for k in ("DataStoreName", "RelativePath"))
        ):
            raise BadRequest(
                f'DataPathAssignments.{name}: use {{"DataStoreName": ..., "RelativePath": ...}}'
            )
        if name in out:
            raise BadRequest(f"DataPathAssignments.{name}: also in ParameterAssignments")
        out[name] = f"{value['DataStoreName']}/{value['RelativePath'].lstrip('/')}"
    return out


def _int_query(request: Request, key: str, default: int) -> int:
    value = request.query_params.get(key)
    if value is None:
        return default
    if not value.isdigit():
        raise BadRequest(f"{key}: {value!r} must be a whole number")
    return int(value)
