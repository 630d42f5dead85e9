"""Everything the Azure auth paths import, imported: a lock can pair packages that pip check
accepts but that cannot load together (pyOpenSSL 22 declares no cryptography cap, and fails on
import against a cryptography that dropped bindings it uses). Those imports happen only at
login on a real workspace, so nothing else in the offline suite would notice."""

from __future__ import annotations

import datetime
import importlib

import pytest

AUTH_MODULES = [
    # amlops.backends.azureml_v1.auth: azure-identity credentials and TokenAuthentication.
    "azure.identity",
    "azureml.core.authentication",
    # ServicePrincipalAuthentication and its certificate and MSI paths, imported lazily.
    "azureml._vendor.azure_cli_core.auth.identity",
    "azureml._vendor.azure_cli_core.auth.msal_authentication",
    "azureml._vendor.azure_cli_core.auth.adal_authentication",
    "azureml._vendor.azure_cli_core.auth.old_adal_authentication",
    "msal",
    "OpenSSL",
    "OpenSSL.crypto",
]


@pytest.mark.parametrize("module", AUTH_MODULES)
def test_auth_module_imports(module):
    importlib.import_module(module)


def test_the_credentials_amlops_builds_exist():
    from azure import identity
    from azureml.core.authentication import ServicePrincipalAuthentication, TokenAuthentication

    for name in (
        "AzureCliCredential",
        "ManagedIdentityCredential",
        "WorkloadIdentityCredential",
        "EnvironmentCredential",
        "CertificateCredential",  # what EnvironmentCredential builds from a certificate path
        "ClientSecretCredential",
    ):
        assert callable(getattr(identity, name)), name
    assert TokenAuthentication and ServicePrincipalAuthentication


def test_service_principal_certificate_is_read_through_openssl(tmp_path):
    """azureml-core's certificate auth loads the PEM with pyOpenSSL; run that path on a
    self-signed certificate (no token is requested)."""
    from azureml._vendor.azure_cli_core.auth.identity import ServicePrincipalAuth
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amlops-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "sp.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )

    entry = ServicePrincipalAuth.build_credential(secret_or_certificate=str(pem))
    auth = ServicePrincipalAuth.build_from_credential("tenant", "client", entry)
    assert auth.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
