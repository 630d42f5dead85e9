"""Azure auth for the v1 backend: the shared credential choice (amlops.backends.azure_auth),
and azureml-core's view of it."""

from __future__ import annotations

from typing import Any

from amlops.backends.azure_auth import (  # noqa: F401 (the v1 backend's names for them)
    FEDERATED_VARS,
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_VARS,
    MANAGED_IDENTITY_VARS,
    REFRESH_MARGIN_S,
    SP_CERT_VARS,
    SP_SECRET_VARS,
    AuthChoice,
    CachingCredential,
    choose,
    credential,
    github_oidc_assertion,
    github_oidc_credential,
)


def azureml_auth(cred: Any) -> Any:
    """azureml-core auth over an azure-identity credential.

    TokenAuthentication instead of AzureCliAuthentication: the latter needs the whole azure-cli
    installed in this Python environment.
    """
    from azureml.core.authentication import TokenAuthentication

    def token_for(audience: str) -> str:
        return cred.get_token(audience.rstrip("/") + "/.default").token

    return TokenAuthentication(token_for)
