"""Names v2 resources must have, derived from the spec's (checked by azure-ai-ml's own rules:
entities/_endpoint/_endpoint_helpers.py, 3-32 characters, a letter first, letters, digits, '-')."""

from __future__ import annotations

import re

from amlops.errors import ConfigError

ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")


def endpoint_name(pipeline: str) -> str:
    """The batch endpoint of a pipeline: its name with '_' and '.' as '-' (v2 allows only '-')."""
    name = re.sub(r"[_.]", "-", pipeline)
    if not ENDPOINT_NAME_RE.match(name):
        raise ConfigError(
            f"pipeline {pipeline!r}: its v2 batch endpoint would be named {name!r}, which must be "
            "3-32 letters, digits or '-', starting with a letter (rename the pipeline)"
        )
    return name


def deployment_name(version: str) -> str:
    """Endpoint version "0", "1", ... as a deployment name (at least 3 characters)."""
    return f"version-{version}"


def deployment_version(name: str) -> str | None:
    """The endpoint version a deployment name carries, None for one amlops did not name."""
    match = re.fullmatch(r"version-(\d+)", name or "")
    return match.group(1) if match else None
