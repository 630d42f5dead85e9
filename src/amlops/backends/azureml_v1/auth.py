"""Credentials without prompts: Azure CLI (incl. after OIDC azure/login), service principal
from the environment, or managed identity. Secrets only ever come from the environment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amlops.errors import ConfigError

SP_SECRET_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
SP_CERT_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH")
FEDERATED_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
MANAGED_IDENTITY_VARS = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT")


@dataclass(frozen=True)
class AuthChoice:
    mode: str  # cli | service_principal | managed_identity
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

    if choice.mode == "cli":
        return identity.AzureCliCredential()
    if choice.mode == "managed_identity":
        client_id = os.environ.get("AZURE_CLIENT_ID") or managed_identity_client_id
        return identity.ManagedIdentityCredential(client_id=client_id)
    if os.environ.get("AZURE_FEDERATED_TOKEN_FILE") and not os.environ.get("AZURE_CLIENT_SECRET"):
        return identity.WorkloadIdentityCredential()
    return identity.EnvironmentCredential()


def azureml_auth(cred: Any) -> Any:
    """azureml-core auth over an azure-identity credential.

    TokenAuthentication instead of AzureCliAuthentication: the latter needs the whole azure-cli
    installed in this Python environment.
    """
    from azureml.core.authentication import TokenAuthentication

    def token_for(audience: str) -> str:
        return cred.get_token(audience.rstrip("/") + "/.default").token

    return TokenAuthentication(token_for)
