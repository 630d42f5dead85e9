"""Dataset files on a datastore's blob container, at content-addressed paths.

Why not ``Dataset.File.upload_directory``: it writes every version to the same path with
``overwrite=True``, so a dataset version registered earlier silently reads the newest data; and
it goes through azureml-dataprep, which treats a ``TokenAuthentication`` as a derived
credential and falls back to an interactive login (browser, then device code) that hangs CI.

Here a folder is uploaded with azure-storage-blob and the configured azure-identity credential
(a ``TokenCredential``: service principal, workload identity, managed identity or the Azure
CLI login), never an account key, never a prompt. Layout::

    <base>/<digest[:16]>/<relative path of each file>

``base`` is the dataset's ``datastore_path`` (default: its name) and ``digest`` the sha256
over every file's relative path and bytes (``amlops.content.hash_tree``, all files: a data
folder's ``.gitignore`` often ignores the data itself). Different content gets a different
folder, so the folder a registered version points at never changes:

- every blob is written with ``overwrite=False`` (the service refuses to replace a blob), and
  carries its file's sha256 as metadata;
- uploading the same content again lists the folder, finds every file with the same size and
  sha256, and writes nothing; a partial earlier upload is completed, not redone;
- a folder holding anything else (a blob with other bytes, no sha256, or a file not in the
  local tree) is an error, never "fixed" by overwriting: something other than this code wrote
  there, and a registered version may read it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.backends.sdk_errors import first_line
from amlops.config import DatasetConfig
from amlops.content import hash_text, hash_tree
from amlops.errors import AmlopsError

SHA256_KEY = "amlops_sha256"  # blob metadata keys must be C# identifiers
DIGEST_CHARS = 16  # 64 bits of sha256: a folder name people can read, no realistic collision
UPLOAD_WORKERS = 4


@dataclass(frozen=True)
class BlobLocation:
    """A blob container: ``https://<account>.blob.<suffix>`` and the container name."""

    account_url: str
    container: str

    @classmethod
    def of_datastore(cls, datastore: Any) -> BlobLocation:
        """The container behind an azureml-core ``AzureBlobDatastore``."""
        kind = getattr(datastore, "datastore_type", None)
        if kind != "AzureBlob":
            raise AmlopsError(
                f"datastore {getattr(datastore, 'name', '?')!r} is {kind or 'not a blob store'}; "
                "dataset uploads need an Azure Blob datastore"
            )
        protocol = datastore.protocol or "https"
        endpoint = datastore.endpoint or "core.windows.net"
        return cls(
            f"{protocol}://{datastore.account_name}.blob.{endpoint}", datastore.container_name
        )


@dataclass(frozen=True)
class Upload:
    """What ``upload_dataset_files`` did: the folder to register and which files it wrote."""

    path: str  # container-relative folder, no trailing slash: the dataset's datastore path
    digest: str  # full sha256 of the tree
    uploaded: tuple[str, ...]  # relative paths written now
    present: tuple[str, ...]  # relative paths already there with the same bytes


def local_files(folder: Path) -> list[tuple[str, Path]]:
    """Every file under ``folder`` as (posix relative path, path), sorted: what is uploaded."""
    if not folder.is_dir():
        raise AmlopsError(f"{folder}: dataset uploads need a folder")
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    if not files:
        raise AmlopsError(f"{folder}: no files to upload")
    return files


@dataclass(frozen=True)
class DatasetVersion:
    """Where a dataset version's files are, and what says two versions are the same."""

    base: str  # the dataset's place on its datastore: datastore_path, or its name
    path: str  # the version's own folder: under base, named by content, when amlops uploads
    fingerprint: str


def dataset_version(cfg: DatasetConfig, datastore: str, upload_from: Path | None) -> DatasetVersion:
    """The version ``cfg`` describes, with ``upload_from`` the folder a deploy uploads (None:
    the data is registered where it already is). Every Azure backend decides it here."""
    base = (cfg.datastore_path or cfg.name).strip("/")
    # Uploaded content gets a folder of its own, so an older version keeps its data.
    path = content_path(base, upload_from)[0] if upload_from is not None else base
    return DatasetVersion(base, path, hash_text(cfg.kind, datastore, path, cfg.description)[:16])


def upload_source(cfg: DatasetConfig, tmp: Path, where: str) -> Path:
    """The local folder to upload for ``cfg``: its sample written out (into ``tmp``), or its
    path."""
    from amlops.samples import materialise

    if cfg.source is not None:
        dest = tmp / cfg.name
        materialise(cfg.source, dest, f"{where}: datasets.{cfg.name}.source")
        return dest
    assert cfg.path is not None
    if cfg.path.is_file():
        dest = tmp / cfg.name
        dest.mkdir()
        (dest / cfg.path.name).write_bytes(cfg.path.read_bytes())
        return dest
    return cfg.path


def content_path(base: str, folder: Path) -> tuple[str, str]:
    """(``<base>/<digest[:16]>``, full digest) for the files under ``folder``; no I/O remote."""
    local_files(folder)  # same errors as the upload, before anything is hashed
    digest = hash_tree(folder, respect_ignore=False)
    base = base.strip("/")
    prefix = f"{base}/{digest[:DIGEST_CHARS]}" if base else digest[:DIGEST_CHARS]
    return prefix, digest


def upload_dataset_files(
    folder: Path,
    location: BlobLocation,
    base: str,
    credential: Any,
    **client_options: Any,
) -> Upload:
    """Upload ``folder`` under ``<base>/<digest[:16]>/`` unless it is already there.

    ``credential`` is an azure-core ``TokenCredential`` (see ``auth.credential``; wrap it in
    ``auth.CachingCredential`` to share tokens with other clients). ``client_options`` go to
    azure-storage-blob's ``ContainerClient`` (e.g. ``connection_verify``, ``transport``).
    Raises ``AmlopsError`` with one line when the service refuses or the folder holds other
    content.
    """
    prefix, digest = content_path(base, folder)
    files = local_files(folder)
    with _container(location, credential, client_options) as container:
        remote = _listing(container, location, prefix)
        wanted = {rel for rel, _ in files}
        strangers = sorted(set(remote) - wanted)
        if strangers:
            raise AmlopsError(
                f"{_where(location, prefix)} holds {len(strangers)} file(s) not in {folder} "
                f"(first: {strangers[0]}); content paths are never overwritten: remove the folder "
                "or find what wrote it"
            )
        present, missing = [], []
        for rel, path in files:
            sha, md5 = _digests(path)
            if rel not in remote:
                missing.append((rel, path, sha, md5))
                continue
            size, remote_sha = remote[rel]
            if size != path.stat().st_size or remote_sha != sha:
                raise AmlopsError(
                    f"{_where(location, prefix)}/{rel} exists with other content; content "
                    "paths are never overwritten"
                )
            present.append(rel)
        with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
            list(pool.map(lambda m: _put(container, location, prefix, *m), missing))
    return Upload(prefix, digest, tuple(m[0] for m in missing), tuple(present))


def list_dataset_files(
    location: BlobLocation, path: str, credential: Any, **client_options: Any
) -> dict[str, int]:
    """{relative path: size} of the files under ``path``, a folder ``upload_dataset_files`` made."""
    with _container(location, credential, client_options) as container:
        return {rel: size for rel, (size, _) in _listing(container, location, path).items()}


def download_dataset_files(
    location: BlobLocation, path: str, dest: Path, credential: Any, **client_options: Any
) -> list[str]:
    """Download the files under ``path`` into ``dest`` (same relative layout); their paths."""
    prefix = path.strip("/") + "/"
    with _container(location, credential, client_options) as container:
        names = sorted(_listing(container, location, path))
        for rel in names:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with _service_errors(location, path):
                data = container.download_blob(prefix + rel).readall()
            target.write_bytes(data)
    return names


@contextmanager
def _container(location: BlobLocation, credential: Any, options: dict[str, Any]) -> Iterator[Any]:
    from azure.storage.blob import ContainerClient

    if credential is None or isinstance(credential, str | dict):
        # A key or SAS string would work against the service, but this module exists so that
        # uploads run as the deploying identity; refuse anything but a TokenCredential.
        raise AmlopsError("dataset uploads need an azure-identity credential (a TokenCredential)")
    client = ContainerClient(
        location.account_url, location.container, credential=credential, **options
    )
    with client:
        yield client


def _listing(
    container: Any, location: BlobLocation, path: str
) -> dict[str, tuple[int, str | None]]:
    """{relative path: (size, sha256 from metadata)} of the blobs under ``path``/."""
    prefix = path.strip("/") + "/"
    with _service_errors(location, path):
        return {
            blob.name[len(prefix) :]: (blob.size, (blob.metadata or {}).get(SHA256_KEY))
            for blob in container.list_blobs(name_starts_with=prefix, include=["metadata"])
        }


def _put(
    container: Any, location: BlobLocation, prefix: str, rel: str, path: Path, sha: str, md5: bytes
) -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import ContentSettings

    name = f"{prefix}/{rel}"
    try:
        with _service_errors(location, prefix), path.open("rb") as data:
            container.upload_blob(
                name,
                data,
                length=path.stat().st_size,
                metadata={SHA256_KEY: sha},
                # Stored as the blob's Content-MD5 (also for chunked uploads, where the service
                # would not compute one), so any client can check what it downloads.
                content_settings=ContentSettings(content_md5=bytearray(md5)),
                overwrite=False,
            )
    except ResourceExistsError:
        # A concurrent deploy of the same content won the race; fine if it wrote the same bytes.
        with _service_errors(location, prefix):
            props = container.get_blob_client(name).get_blob_properties()
        if (props.metadata or {}).get(SHA256_KEY) != sha:
            raise AmlopsError(
                f"{_where(location, prefix)}/{rel} was written meanwhile with other content"
            ) from None


def _digests(path: Path) -> tuple[str, bytes]:
    """(sha256 hex, md5 bytes) in one read: ours to compare, and the service's Content-MD5."""
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - a checksum, not security
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.digest()


def _where(location: BlobLocation, path: str) -> str:
    return f"{location.account_url}/{location.container}/{path}"


@contextmanager
def _service_errors(location: BlobLocation, path: str) -> Iterator[None]:
    """Storage and credential failures as one line naming the place and the service's reason."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError, ServiceRequestError

    try:
        yield
    except ResourceExistsError:
        raise  # _put decides
    except HttpResponseError as exc:  # also ClientAuthenticationError: token refused or none
        raise AmlopsError(f"{_where(location, path)}: {_reason(exc)}") from None
    except ServiceRequestError as exc:
        raise AmlopsError(f"{_where(location, path)}: unreachable: {first_line(exc)}") from None


def _reason(exc: Exception) -> str:
    """The service's error code and its authentication detail (why a token was refused)."""
    code = str(getattr(exc, "error_code", None) or getattr(exc, "status_code", "") or "")
    code = getattr(getattr(exc, "error_code", None), "value", None) or code
    detail = re.search(r"^authenticationerrordetail:(.*)$", str(exc), re.MULTILINE | re.IGNORECASE)
    why = detail.group(1).strip() if detail else first_line(exc)
    if code == "AuthorizationPermissionMismatch":
        why += " (the deploying identity needs Storage Blob Data Contributor on the container)"
    return f"{code}: {why}" if code else why
