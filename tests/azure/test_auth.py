"""Auth choice without prompts; the azure-identity credential each choice builds (no token is
requested, so nothing here talks to Entra ID)."""

from __future__ import annotations

import pytest

from amlops.backends.azureml_v1.auth import azureml_auth, choose, credential
from amlops.errors import ConfigError

SP = {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_SECRET": "s3cr3t"}
FEDERATED = {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_FEDERATED_TOKEN_FILE": "/f"}


@pytest.mark.parametrize(
    ("environ", "az", "mode"),
    [
        (SP, True, "service_principal"),
        (FEDERATED, False, "service_principal"),
        ({"IDENTITY_ENDPOINT": "http://169.254.169.254"}, True, "managed_identity"),
        ({}, True, "cli"),
    ],
)
def test_auto_detects_in_order(environ, az, mode):
    picked = choose("auto", environ, az_on_path=az)
    assert picked.mode == mode
    assert "s3cr3t" not in picked.why  # the reason names variables, never values


def test_nothing_to_use_says_what_to_do():
    with pytest.raises(ConfigError, match=r"no credentials found; run `az login`"):
        choose("auto", {}, az_on_path=False)


def test_explicit_modes_are_checked():
    with pytest.raises(ConfigError, match="service_principal needs AZURE_CLIENT_ID"):
        choose("service_principal", {"AZURE_CLIENT_ID": "c"}, az_on_path=True)
    with pytest.raises(ConfigError, match=r"cli needs the Azure CLI \(az\) on PATH"):
        choose("cli", {}, az_on_path=False)
    assert choose("managed_identity", {}, az_on_path=False).mode == "managed_identity"


def test_credentials_per_mode(monkeypatch):
    from azure import identity

    for name in (*SP, "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(credential(choose("cli", {}, az_on_path=True)), identity.AzureCliCredential)
    mi = credential(choose("managed_identity", {}), managed_identity_client_id="mi-client")
    assert isinstance(mi, identity.ManagedIdentityCredential)
    for key, value in SP.items():
        monkeypatch.setenv(key, value)
    sp = credential(choose("auto", az_on_path=False))
    assert isinstance(sp, identity.EnvironmentCredential)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token")
    wi = credential(choose("auto", az_on_path=False))
    assert isinstance(wi, identity.WorkloadIdentityCredential)


def test_azureml_auth_asks_the_credential_for_a_scoped_token():
    from azure.core.credentials import AccessToken
    from azureml.core.authentication import TokenAuthentication

    scopes = []

    class Recorder:
        def get_token(self, *requested, **kwargs):  # noqa: ANN002, ANN003
            scopes.extend(requested)
            return AccessToken("arm-token", 4102444800)

    aml = azureml_auth(Recorder())
    assert isinstance(aml, TokenAuthentication)
    assert aml.get_authentication_header() == {"Authorization": "Bearer arm-token"}
    assert scopes and all(s.endswith("/.default") for s in scopes)
