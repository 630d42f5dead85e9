"""Dataset uploads against a real blob service (Azurite) that checks the bearer token.

Each dataset version's files live at their own content-addressed folder: uploading the same
content again writes nothing, new content goes to a new folder, and a folder a registered
version reads never changes. Faked edge (see azurite.py): Entra ID, by ``EntraTokenFake``.
Every test runs under SIGALRM and with stdin closed, so anything waiting for a login prompt
fails the test instead of hanging it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azurite import STORAGE_SCOPE, Azurite, EntraTokenFake, fail_after, running

from amlops.backends.azureml_v1.auth import CachingCredential
from amlops.backends.dataset_blobs import (
    BlobLocation,
    content_path,
    download_dataset_files,
    list_dataset_files,
    upload_dataset_files,
)
from amlops.errors import AmlopsError

TEST_TIMEOUT_S = 60
V1 = {"diabetes.csv": b"age,bmi,target\n59,32.1,151\n", "parts/extra.csv": b"age\n48\n"}


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with running(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    with fail_after(TEST_TIMEOUT_S, "a device-code login polls for 120 s"):
        yield


class Requests:
    """Records each HTTP request the blob client sends (azure-core's raw_request_hook)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, request) -> None:  # noqa: ANN001
        self.sent.append((request.http_request.method, request.http_request.url))

    def writes(self) -> list[str]:
        return [url for method, url in self.sent if method == "PUT"]


@pytest.fixture
def store(azurite: Azurite):
    """A fresh container and the client options that reach it (trusting only the test cert)."""
    from azure.storage.blob import BlobServiceClient

    options = {"connection_verify": str(azurite.cert), "connection_timeout": 10, "read_timeout": 30}
    container = f"data-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient(azurite.account_url, credential=EntraTokenFake(), **options) as service:
        service.create_container(container)
    return BlobLocation(azurite.account_url, container), options


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def read(location, path, credential, options, dest: Path) -> dict[str, bytes]:
    names = download_dataset_files(location, path, dest, credential, **options)
    return {rel: (dest / rel).read_bytes() for rel in names}


def test_same_content_is_uploaded_once(store, tmp_path):
    location, options = store
    cred, seen = EntraTokenFake(), Requests()
    first = upload_dataset_files(
        write(tmp_path / "a", V1), location, "diabetes", cred, raw_request_hook=seen, **options
    )
    assert first.path == f"diabetes/{first.digest[:16]}"
    assert sorted(first.uploaded) == sorted(V1) and first.present == ()
    assert len(seen.writes()) == 2
    assert {s for scopes in cred.scopes for s in scopes} == {STORAGE_SCOPE}

    # The register stage materialises data into a new temporary folder on every deploy:
    # the same files elsewhere are the same content.
    seen.sent.clear()
    again = upload_dataset_files(
        write(tmp_path / "b", V1), location, "diabetes", cred, raw_request_hook=seen, **options
    )
    assert (again.path, again.uploaded, sorted(again.present)) == (first.path, (), sorted(V1))
    assert seen.writes() == [] and seen.sent  # it looked, and wrote nothing
    assert list_dataset_files(location, first.path, cred, **options) == {
        rel: len(data) for rel, data in V1.items()
    }


def test_new_content_gets_a_new_folder_and_the_old_version_keeps_its_bytes(store, tmp_path):
    location, options = store
    cred = EntraTokenFake()
    folder = write(tmp_path / "data", V1)
    v1 = upload_dataset_files(folder, location, "diabetes", cred, **options)
    (folder / "diabetes.csv").write_bytes(b"age,bmi,target\n61,25.0,75\n")
    v2 = upload_dataset_files(folder, location, "diabetes", cred, **options)

    assert v2.path != v1.path and v2.path.startswith("diabetes/")
    assert v2.uploaded == ("diabetes.csv", "parts/extra.csv")  # a folder holds a whole version
    assert read(location, v1.path, cred, options, tmp_path / "r1") == V1
    assert read(location, v2.path, cred, options, tmp_path / "r2")["diabetes.csv"].startswith(
        b"age,bmi,target\n61"
    )
    assert content_path("diabetes", folder)[0] == v2.path  # a plan can name it without I/O


def test_a_partial_upload_is_completed(store, tmp_path):
    location, options = store
    cred = EntraTokenFake()
    folder = write(tmp_path / "data", V1)
    first = upload_dataset_files(folder, location, "diabetes", cred, **options)
    _blob(location, options, f"{first.path}/parts/extra.csv").delete_blob()  # a run cut short
    again = upload_dataset_files(folder, location, "diabetes", cred, **options)
    assert (again.uploaded, again.present) == (("parts/extra.csv",), ("diabetes.csv",))
    assert read(location, first.path, cred, options, tmp_path / "r") == V1


def test_a_content_folder_is_never_overwritten(store, tmp_path):
    location, options = store
    cred = EntraTokenFake()
    folder = write(tmp_path / "data", V1)
    first = upload_dataset_files(folder, location, "diabetes", cred, **options)
    tampered = f"{first.path}/diabetes.csv"
    _blob(location, options, tampered).upload_blob(b"someone else's bytes", overwrite=True)
    with pytest.raises(AmlopsError, match=r"diabetes.csv exists with other content"):
        upload_dataset_files(folder, location, "diabetes", cred, **options)
    assert _blob(location, options, tampered).download_blob().readall() == b"someone else's bytes"

    _blob(location, options, tampered).delete_blob()
    _blob(location, options, f"{first.path}/stray.csv").upload_blob(b"x")
    with pytest.raises(AmlopsError, match=r"holds 1 file\(s\) not in .* \(first: stray.csv\)"):
        upload_dataset_files(folder, location, "diabetes", cred, **options)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (EntraTokenFake(audience="https://management.azure.com"), "Invalid token audience"),
        (EntraTokenFake(lifetime=-120), "Lifetime validation failed. The token is expired"),
        (EntraTokenFake(issuer="https://login.example.com/tenant/"), "Invalid token issuer"),
    ],
    ids=["wrong-audience", "expired", "foreign-issuer"],
)
def test_the_service_refuses_a_bad_token_and_nothing_is_written(store, tmp_path, token, reason):
    location, options = store
    with pytest.raises(AmlopsError, match=rf"AuthenticationFailed: {reason}"):
        upload_dataset_files(write(tmp_path / "data", V1), location, "diabetes", token, **options)
    assert list_dataset_files(location, "diabetes", EntraTokenFake(), **options) == {}


def test_only_a_token_credential_is_accepted(store, tmp_path):
    location, options = store
    folder = write(tmp_path / "data", V1)
    for not_a_token_credential in (None, "account-key-or-sas", {"account_name": "a"}):
        with pytest.raises(AmlopsError, match="need an azure-identity credential"):
            upload_dataset_files(folder, location, "diabetes", not_a_token_credential, **options)


def test_uploads_share_one_cached_token(store, tmp_path):
    location, options = store
    inner = EntraTokenFake()
    cred = CachingCredential(inner)
    for n in range(3):
        files = {**V1, "diabetes.csv": f"age\n{n}\n".encode()}
        upload_dataset_files(write(tmp_path / str(n), files), location, "diabetes", cred, **options)
    assert len(inner.scopes) == 1  # three clients, one token request


def test_the_client_trusts_only_the_given_certificate(store, tmp_path):
    location, options = store
    folder = write(tmp_path / "data", V1)
    with pytest.raises(AmlopsError, match=r"unreachable: .*CERTIFICATE_VERIFY_FAILED"):
        upload_dataset_files(
            folder, location, "diabetes", EntraTokenFake(), connection_timeout=10, retry_total=0
        )


def _blob(location: BlobLocation, options: dict, name: str):
    """A blob client beside the code under test: what another writer (or a user) would do."""
    from azure.storage.blob import BlobClient

    return BlobClient(
        location.account_url, location.container, name, credential=EntraTokenFake(), **options
    )


def test_the_container_behind_an_azureml_blob_datastore(workspace):
    from azureml.data.azure_storage_datastore import AzureBlobDatastore, AzureFileDatastore

    store = AzureBlobDatastore(workspace, "training", "training-data", "stamlopsdev")
    assert BlobLocation.of_datastore(store) == BlobLocation(
        "https://stamlopsdev.blob.core.windows.net", "training-data"
    )
    sovereign = AzureBlobDatastore(
        workspace, "cn", "data", "stcn", protocol="https", endpoint="core.chinacloudapi.cn"
    )
    assert BlobLocation.of_datastore(sovereign).account_url == (
        "https://stcn.blob.core.chinacloudapi.cn"
    )
    share = AzureFileDatastore(workspace, "share", "files", "stamlopsdev", sas_token="sv=x&sig=y")
    with pytest.raises(
        AmlopsError, match=r"'share' is AzureFile; dataset uploads need an Azure Blob"
    ):
        BlobLocation.of_datastore(share)
