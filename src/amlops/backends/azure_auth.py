"""Credentials without prompts, for every Azure backend: GitHub Actions OIDC (a fresh federated
token per Entra ID token), Azure CLI (incl. after OIDC azure/login), service principal from the
environment, or managed identity. Secrets only ever come from the environment. The v1 backend
wraps these for azureml-core (azureml_v1/auth.py); azure-ai-ml and azure-storage-blob take them
as they are."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from amlops.errors import ConfigError

log = logging.getLogger("amlops.azure_auth")

SP_SECRET_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
SP_CERT_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH")
FEDERATED_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
MANAGED_IDENTITY_VARS = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT")
# A GitHub Actions job with `id-token: write` has the first two; the workflow sets the others.
GITHUB_OIDC_VARS = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
)
# The audience Entra ID expects in a federated credential's assertion.
GITHUB_OIDC_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class AuthChoice:
    mode: str  # cli | service_principal | managed_identity | github_oidc (auto only)
    why: str  # for the log line: what was detected, never a value


def choose(
    mode: str, environ: Mapping[str, str] | None = None, *, az_on_path: bool | None = None
) -> AuthChoice:
    """Pick the auth mode: the configured one (checked), or the first one the environment has."""
    env = os.environ if environ is None else environ
    has = lambda names: all(env.get(n) for n in names)  # noqa: E731
    if az_on_path is None:
        az_on_path = shutil.which("az") is not None
    sp = has(SP_SECRET_VARS) or has(SP_CERT_VARS) or has(FEDERATED_VARS)
    mi = any(env.get(n) for n in MANAGED_IDENTITY_VARS)
    if mode == "service_principal":
        if not sp:
            raise ConfigError(
                "workspace.auth: service_principal needs AZURE_CLIENT_ID, AZURE_TENANT_ID and "
                "one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or "
                "AZURE_FEDERATED_TOKEN_FILE in the environment"
            )
        return AuthChoice("service_principal", "configured")
    if mode == "cli":
        if not az_on_path:
            raise ConfigError("workspace.auth: cli needs the Azure CLI (az) on PATH and `az login`")
        return AuthChoice("cli", "configured")
    if mode == "managed_identity":
        return AuthChoice("managed_identity", "configured")
    if mode != "auto":
        raise ConfigError(f"workspace.auth: unknown mode {mode!r}")
    if sp:
        return AuthChoice("service_principal", "AZURE_CLIENT_ID/AZURE_TENANT_ID are set")
    if has(GITHUB_OIDC_VARS):
        # Before the CLI: an azure/login session is one federated token that expires after
        # minutes and cannot refresh; this asks GitHub for a new one whenever it needs one.
        return AuthChoice(
            "github_oidc", "GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL) with AZURE_CLIENT_ID"
        )
    if mi:
        return AuthChoice("managed_identity", "a managed identity endpoint is set")
    if az_on_path:
        return AuthChoice("cli", "az is on PATH")
    raise ConfigError(
        "workspace.auth: no credentials found; run `az login` (or azure/login in GitHub "
        "Actions), set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run on a "
        "managed identity"
    )


def credential(choice: AuthChoice, *, managed_identity_client_id: str | None = None) -> Any:
    """An azure-identity credential for ``choice``; nothing is requested until first use."""
    from azure import identity

    if choice.mode == "github_oidc":
        return github_oidc_credential()
    if choice.mode == "cli":
        return identity.AzureCliCredential()
    if choice.mode == "managed_identity":
        client_id = os.environ.get("AZURE_CLIENT_ID") or managed_identity_client_id
        return identity.ManagedIdentityCredential(client_id=client_id)
    if os.environ.get("AZURE_FEDERATED_TOKEN_FILE") and not os.environ.get("AZURE_CLIENT_SECRET"):
        return identity.WorkloadIdentityCredential()
    return identity.EnvironmentCredential()


def deploy_credential(mode: str, coords: Any) -> Any:
    """The credential ``workspace.auth`` chooses for a deploy to ``coords``' workspace, one
    token per scope until near expiry, shared by every client of the deploy."""
    choice = choose(mode)
    log.info(
        "workspace %s (resource group %s) with %s auth (%s)",
        coords.workspace_name,
        coords.resource_group,
        choice.mode,
        choice.why,
    )
    return CachingCredential(
        credential(choice, managed_identity_client_id=coords.managed_identity_client_id)
    )


def github_oidc_assertion(
    request_url: str, request_token: str, *, timeout: float = 30.0
) -> Callable[[], str]:
    """A callable that fetches a new GitHub Actions OIDC token (audience Entra ID) per call."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    from azure.core.exceptions import ClientAuthenticationError

    separator = "&" if urllib.parse.urlparse(request_url).query else "?"
    url = f"{request_url}{separator}audience={urllib.parse.quote(GITHUB_OIDC_AUDIENCE, safe='')}"

    def fetch() -> str:
        request = urllib.request.Request(
            url,
            headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                value = json.load(response).get("value")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # The message names the endpoint's answer, never the request token.
            raise ClientAuthenticationError(
                f"GitHub OIDC token request failed ({type(exc).__name__}: {exc}); does the "
                "job have `permissions: id-token: write`?"
            ) from None
        if not value:
            raise ClientAuthenticationError("GitHub OIDC token response has no `value`")
        return value

    return fetch


def github_oidc_credential(environ: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
    """azure-identity's ClientAssertionCredential over GitHub's OIDC endpoint.

    ClientAssertionCredential calls the assertion callable each time it acquires a token, so
    every Entra ID token comes from a freshly issued GitHub token: no stage outlives its
    login (a federated `az login` cannot refresh once its GitHub token is ~10 minutes old).
    ``kwargs`` go to the credential (e.g. an azure-core ``transport`` in tests).
    """
    from azure.identity import ClientAssertionCredential

    env = os.environ if environ is None else environ
    missing = [name for name in GITHUB_OIDC_VARS if not env.get(name)]
    if missing:
        raise ConfigError(
            f"workspace.auth: GitHub OIDC needs {', '.join(missing)} in the environment"
        )
    return ClientAssertionCredential(
        tenant_id=env["AZURE_TENANT_ID"],
        client_id=env["AZURE_CLIENT_ID"],
        func=github_oidc_assertion(
            env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
        ),
        **kwargs,
    )


# Hand a token out again until this many seconds before it expires: Entra ID tokens live about
# an hour, and a request started just before expiry must not arrive with a dead token.
REFRESH_MARGIN_S = 300.0


class CachingCredential:
    """A TokenCredential that reuses each token until ``REFRESH_MARGIN_S`` before its expiry.

    azureml-core's ``TokenAuthentication`` asks for a token on every REST call, and
    ``AzureCliCredential`` answers each ask by running ``az account get-access-token`` (about
    a second each); azure-storage-blob clients cache per client only. One wrapper around the
    configured credential makes every client share one token per scope.

    Thread-safe: callers for the same scope wait for one request instead of each starting
    their own; different scopes are fetched independently. A call with ``claims`` (a
    claims challenge: the service refused the token) always goes to the wrapped credential.
    """

    def __init__(
        self,
        inner: Any,
        *,
        refresh_margin: float = REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.time,
    ):
        self.inner = inner
        self._margin = refresh_margin
        self._clock = clock
        self._tokens: dict[tuple, Any] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        if kwargs.get("claims"):
            return self.inner.get_token(*scopes, **kwargs)
        key = (tuple(sorted(scopes)), kwargs.get("tenant_id"), bool(kwargs.get("enable_cae")))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            token = self._tokens.get(key)
            if token is None or token.expires_on - self._margin <= self._clock():
                token = self.inner.get_token(*scopes, **kwargs)
                self._tokens[key] = token
            return token

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> CachingCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
