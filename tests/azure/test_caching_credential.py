"""One token per scope until it nears expiry: no `az account get-access-token` per REST call."""

from __future__ import annotations

import threading
import time

from azure.core.credentials import AccessToken

from amlops.backends.azureml_v1.auth import REFRESH_MARGIN_S, CachingCredential, azureml_auth

ARM = "https://management.azure.com/.default"
STORAGE = "https://storage.azure.com/.default"


class Counting:
    """Stands in for AzureCliCredential: each call is one (slow) token request."""

    def __init__(self, lifetime: float = 3600.0, delay: float = 0.0, clock=time.time):
        self.calls: list[tuple[tuple[str, ...], dict]] = []
        self.lifetime, self.delay, self.clock = lifetime, delay, clock
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        time.sleep(self.delay)
        with self._lock:
            self.calls.append((scopes, kwargs))
            n = len(self.calls)
        return AccessToken(f"token-{n}", int(self.clock() + self.lifetime))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_until_the_margin_before_expiry():
    clock = Clock()
    inner = Counting(clock=clock)
    cred = CachingCredential(inner, clock=clock)
    first = cred.get_token(ARM)
    clock.now += 3600 - REFRESH_MARGIN_S - 1  # still more than the margin left
    assert cred.get_token(ARM) is first
    assert len(inner.calls) == 1
    clock.now += 1  # now within the margin: a request started now could outlive the token
    second = cred.get_token(ARM)
    assert second.token == "token-2" and len(inner.calls) == 2
    assert cred.get_token(ARM) is second


def test_each_scope_and_tenant_has_its_own_token():
    inner = Counting()
    cred = CachingCredential(inner)
    arm, storage = cred.get_token(ARM), cred.get_token(STORAGE)
    assert arm.token != storage.token
    other_tenant = cred.get_token(ARM, tenant_id="other")
    assert other_tenant.token not in (arm.token, storage.token)
    assert cred.get_token(STORAGE) is storage and cred.get_token(ARM) is arm
    assert len(inner.calls) == 3
    assert inner.calls[2] == ((ARM,), {"tenant_id": "other"})  # options reach the credential


def test_a_claims_challenge_always_asks_the_credential():
    inner = Counting()
    cred = CachingCredential(inner)
    cached = cred.get_token(STORAGE)
    fresh = cred.get_token(STORAGE, claims='{"access_token":{"nbf":{"essential":true}}}')
    assert fresh.token != cached.token and len(inner.calls) == 2


def test_concurrent_callers_share_one_request():
    inner = Counting(delay=0.2)
    cred = CachingCredential(inner)
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(cred.get_token(ARM).token)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert got == ["token-1"] * 8
    assert len(inner.calls) == 1


def test_azureml_rest_calls_share_the_cached_token():
    inner = Counting()
    aml = azureml_auth(CachingCredential(inner))
    for _ in range(5):
        assert aml.get_authentication_header() == {"Authorization": "Bearer token-1"}
    assert len(inner.calls) == 1
