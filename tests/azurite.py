"""Azurite, the Azure Storage emulator, as a blob service that checks bearer tokens.

Azurite's ``--oauth basic`` accepts a request's ``Authorization: Bearer <JWT>`` only over HTTPS
and only when the JWT (BlobTokenAuthenticator in node_modules/azurite) has ``iat``, ``nbf``
and ``exp`` with nbf <= now <= exp, an issuer starting with a known Entra ID STS prefix
(``https://sts.windows.net/`` ...), and an audience of ``https://storage.azure.com`` (or the
storage app id, or ``https://<this account>.blob.core.windows.net``). It does not verify the
signature (it has no Entra ID keys), so ``EntraTokenFake`` below mints unsigned tokens with
those claims: the one fake, at the edge to Entra ID, which this machine cannot reach.

A request without an Authorization header falls through to Azurite's key and SAS checks and
is refused as anonymous; a bad token is refused with 403 AuthenticationFailed.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from helpers import REPO

ACCOUNT = "devstoreaccount1"  # Azurite's built-in account; its key is never used here
STORAGE_SCOPE = "https://storage.azure.com/.default"
ENTRA_ISSUER = "https://sts.windows.net/{tenant}/"
AZURITE_MAIN = REPO / "tools" / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob"
AZURITE_MAIN = AZURITE_MAIN / "main.js"
READY = re.compile(r"successfully listens on (https://\S+)")
START_TIMEOUT_S = 60.0


class EntraTokenFake:
    """A TokenCredential that mints the JWT Entra ID would issue for the requested scope.

    Stands in for azure-identity's credentials only because Entra ID is unreachable here.
    The token's audience is the scope's resource (``https://storage.azure.com/.default`` ->
    ``https://storage.azure.com``), as Entra ID does; ``audience``, ``issuer`` and ``lifetime``
    override that to make tokens Azurite must refuse. Tokens are unsigned (``alg: none``):
    Azurite's basic OAuth does not check signatures, and nothing else reads them.
    """

    def __init__(
        self,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        lifetime: float = 3600.0,
        tenant: str = "00000000-0000-0000-0000-00000000abcd",
    ):
        self.audience, self.lifetime, self.tenant = audience, lifetime, tenant
        self.issuer = issuer or ENTRA_ISSUER.format(tenant=tenant)
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        exp = int(now + self.lifetime)
        claims = {
            "aud": self.audience or scopes[0].removesuffix("/.default"),
            "iss": self.issuer,
            "iat": min(now, exp - 60),
            "nbf": min(now, exp - 60),
            "exp": exp,
            "tid": self.tenant,
            "oid": str(uuid.uuid4()),
            "appid": "11111111-2222-3333-4444-555555555555",
            "ver": "1.0",
        }
        return AccessToken(_jwt({"alg": "none", "typ": "JWT"}, claims), exp)


def _jwt(header: dict, claims: dict) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part(header)}.{part(claims)}."


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A one-day certificate for 127.0.0.1 (also its own CA, so clients can trust just it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amlops test azurite")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "azurite-cert.pem", folder / "azurite-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Azurite:
    """Azurite's blob service on 127.0.0.1 (a port the OS picks), HTTPS, bearer tokens checked."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log = workdir / "azurite.log"
        self.cert, self.key = self_signed_cert(workdir)
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    @property
    def account_url(self) -> str:
        # Path-style (IP host): the account is the first path segment.
        return f"{self.endpoint}/{ACCOUNT}"

    def start(self) -> Azurite:
        node = os.environ.get("AMLOPS_NODE") or shutil.which("node")
        if node is None or not AZURITE_MAIN.is_file():
            where = AZURITE_MAIN.relative_to(REPO)
            raise RuntimeError(f"Azurite needs Node.js on PATH and {where}: run `make tools`")
        args = [
            node, str(AZURITE_MAIN),
            "--blobHost", "127.0.0.1", "--blobPort", "0",  # port 0: no race for a free port
            "--oauth", "basic", "--cert", str(self.cert), "--key", str(self.key),
            "--inMemoryPersistence",  # nothing on disk (it refuses --location with this)
            # The SDK speaks a newer service version than this Azurite knows; the calls used
            # here (list, put, get blob) are unchanged between the two.
            "--skipApiVersionCheck",
            "--disableTelemetry",  # on by default: it would call out to Application Insights
        ]  # fmt: skip
        # Its log goes to a file, not a pipe nobody drains (a full pipe would block it).
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = READY.search(self.log.read_text(errors="replace"))
            if found:
                self.endpoint = found.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"Azurite exited {self.proc.returncode}:\n{self._tail()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Azurite not ready after {START_TIMEOUT_S:.0f} s:\n{self._tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def _tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@contextmanager
def running(folder: Path) -> Iterator[Azurite]:
    """An Azurite serving from ``folder`` for the duration of the block."""
    server = Azurite(folder).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def fail_after(seconds: int, waiting_on: str) -> Iterator[None]:
    """Fail, rather than hang, when something waits on a service that never answers."""

    def expired(signum, frame):  # noqa: ANN001
        raise TimeoutError(f"over {seconds} s: something is waiting ({waiting_on}?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
