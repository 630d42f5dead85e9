"""GitHub Actions OIDC auth: every Entra ID token is bought with a freshly issued GitHub token.

``FakeGitHubAndEntra`` is a real HTTP server on 127.0.0.1 standing in for the two endpoints
this machine cannot reach: GitHub's OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL) and
Entra ID's token endpoint. It counts requests and records each client assertion, so the
tests see exactly what azure-identity's ClientAssertionCredential sends on the wire.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport

from amlops.backends.azureml_v1.auth import (
    GITHUB_OIDC_AUDIENCE,
    CachingCredential,
    choose,
    credential,
    github_oidc_assertion,
    github_oidc_credential,
)
from amlops.errors import ConfigError

REQUEST_TOKEN = "runner-request-token"
TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT = "00000000-0000-0000-0000-0000000000bb"
ARM = "https://management.azure.com/.default"
STORAGE = "https://storage.azure.com/.default"


class FakeGitHubAndEntra(ThreadingHTTPServer):
    """GitHub's OIDC token endpoint at /oidc and Entra ID's at /<tenant>/oauth2/v2.0/token."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.github_requests: list[dict] = []
        self.entra_requests: list[dict] = []
        self.fail_github = False
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitHubAndEntra

    def log_message(self, *args) -> None:  # noqa: ANN002 - keep pytest output clean
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # GitHub: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=...
        url = urllib.parse.urlparse(self.path)
        if url.path != "/oidc":
            return self._reply(404, {"message": "Not Found"})
        query = urllib.parse.parse_qs(url.query)
        with self.server._lock:
            self.server.github_requests.append(
                {"query": query, "authorization": self.headers.get("Authorization")}
            )
            n = len(self.server.github_requests)
        if self.server.fail_github:
            return self._reply(403, {"message": "id-token permission missing"})
        if self.headers.get("Authorization") != f"bearer {REQUEST_TOKEN}":
            return self._reply(401, {"message": "Bad credentials"})
        self._reply(200, {"count": n, "value": f"github-jwt-{n}"})

    def do_POST(self) -> None:  # Entra ID: client credentials with a client assertion
        length = int(self.headers.get("Content-Length", 0))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        with self.server._lock:
            self.server.entra_requests.append({"path": self.path, "form": form})
            n = len(self.server.entra_requests)
        self._reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3600,
                "ext_expires_in": 3600,
                "access_token": f"entra-token-{n}",
            },
        )


class LoopbackTransport(RequestsTransport):
    """Sends Entra ID's requests (https://login.microsoftonline.com/...) to the fake server."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201
        original = request.url
        url = urllib.parse.urlparse(original)
        request.url = f"{self.base}{url.path}" + (f"?{url.query}" if url.query else "")
        try:
            return super().send(request, **kwargs)
        finally:
            # MSAL's token cache reads the authority back from the request's URL.
            request.url = original


@pytest.fixture
def server() -> Iterator[FakeGitHubAndEntra]:
    srv = FakeGitHubAndEntra()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def actions_env(server: FakeGitHubAndEntra) -> dict[str, str]:
    # The real URL carries its own query string (?api-version=...), so the audience is added
    # with "&": the fake gets both.
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.base}/oidc?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_TENANT_ID": TENANT,
    }


def test_auto_picks_github_oidc_in_actions_and_says_why(actions_env):
    picked = choose("auto", actions_env, az_on_path=True)
    assert picked.mode == "github_oidc"
    assert REQUEST_TOKEN not in picked.why
    # Without the request variables (no `id-token: write`), the CLI login as before.
    no_token = {k: v for k, v in actions_env.items() if not k.startswith("ACTIONS_")}
    assert choose("auto", no_token, az_on_path=True).mode == "cli"
    # A service principal configured explicitly in the environment still wins.
    assert choose("auto", {**actions_env, "AZURE_CLIENT_SECRET": "s"}).mode == "service_principal"


def test_each_assertion_is_a_new_github_token(server, actions_env):
    fetch = github_oidc_assertion(
        actions_env["ACTIONS_ID_TOKEN_REQUEST_URL"], actions_env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    )
    assert fetch() == "github-jwt-1"
    assert fetch() == "github-jwt-2"
    assert len(server.github_requests) == 2
    first = server.github_requests[0]
    assert first["authorization"] == f"bearer {REQUEST_TOKEN}"
    assert first["query"] == {"api-version": ["2.0"], "audience": [GITHUB_OIDC_AUDIENCE]}


def test_every_entra_token_carries_a_fresh_github_token(server, actions_env):
    cred = github_oidc_credential(actions_env, transport=LoopbackTransport(server.base))
    arm = cred.get_token(ARM)
    storage = cred.get_token(STORAGE)
    assert (arm.token, storage.token) == ("entra-token-1", "entra-token-2")
    assert len(server.github_requests) == 2, "one GitHub token per Entra ID token request"
    assertions = [r["form"]["client_assertion"] for r in server.entra_requests]
    assert assertions == [["github-jwt-1"], ["github-jwt-2"]]
    for entra in server.entra_requests:
        assert entra["path"] == f"/{TENANT}/oauth2/v2.0/token"
        assert entra["form"]["client_id"] == [CLIENT]
        assert entra["form"]["client_assertion_type"] == [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ]


def test_behind_the_caching_wrapper_a_new_token_still_means_a_new_github_token(server, actions_env):
    """What backend.py builds: CachingCredential(credential(choice)). A valid token is
    reused without asking GitHub; whenever azure-identity needs a new Entra ID token (here
    for another scope; near expiry it is the same path), it asks GitHub again."""
    inner = github_oidc_credential(actions_env, transport=LoopbackTransport(server.base))
    cred = CachingCredential(inner)
    first = cred.get_token(ARM)
    assert cred.get_token(ARM) is first
    assert len(server.github_requests) == 1
    cred.get_token(STORAGE)
    assert len(server.github_requests) == 2
    assert server.entra_requests[-1]["form"]["client_assertion"] == ["github-jwt-2"]


def test_credential_builds_it_for_the_choice(monkeypatch, actions_env):
    from azure.identity import ClientAssertionCredential

    for key, value in actions_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("AZURE_CLIENT_CERTIFICATE_PATH", raising=False)
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    built = credential(choose("auto", az_on_path=True))
    assert isinstance(built, ClientAssertionCredential)


def test_a_refused_github_token_is_one_clear_error(server, actions_env):
    server.fail_github = True
    fetch = github_oidc_assertion(actions_env["ACTIONS_ID_TOKEN_REQUEST_URL"], REQUEST_TOKEN)
    with pytest.raises(ClientAuthenticationError, match="id-token: write") as caught:
        fetch()
    assert REQUEST_TOKEN not in str(caught.value)


def test_missing_variables_are_named():
    with pytest.raises(ConfigError, match="ACTIONS_ID_TOKEN_REQUEST_TOKEN, AZURE_TENANT_ID"):
        github_oidc_credential(
            {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://x", "AZURE_CLIENT_ID": CLIENT}
        )
