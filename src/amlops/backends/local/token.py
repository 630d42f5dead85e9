"""The local workspace's access token: what ``amlops serve`` asks every caller for.

Created with the workspace as ``<workspace>/token``, readable by its owner only (mode 0600),
and printed by ``amlops token``. REST callers send it as ``Authorization: Bearer <token>``;
the web page trades it once for a cookie, as Jupyter does.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import time
from pathlib import Path

from amlops.errors import ConfigError

TOKEN_FILE = "token"


def token_path(root: Path) -> Path:
    return root / TOKEN_FILE


def ensure_token(root: Path) -> str:
    """The workspace's token, created (0600, never replaced) when the workspace has none."""
    path = token_path(root)
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: of two processes creating the workspace at once, one writes the token.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
    return read_token(root)


def read_token(root: Path) -> str:
    path = token_path(root)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path}: the token is readable by others (mode {mode:04o}); run: chmod 600 {path}"
        )
    token = path.read_text().strip()
    for _ in range(50):  # another process made the file a moment ago and is writing it
        if token:
            break
        time.sleep(0.02)
        token = path.read_text().strip()
    if len(token) < 16:
        raise ConfigError(f"{path}: not a token (delete the file to have a new one made)")
    return token


def matches(given: str | None, token: str) -> bool:
    """Constant-time comparison: the time taken says nothing about how much matched."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
