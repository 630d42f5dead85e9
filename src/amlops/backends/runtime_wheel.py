"""This project's runtime as a private wheel for step environments, built without a backend,
and the one rule for which environments get it: those of steps whose scripts import ``amlops``,
or whose conda file lists ``amlops`` under pip (that entry is replaced: the package is on no
index). Both Azure backends ship it, each its own way.

Written directly (a wheel is a zip with a dist-info folder) so it is reproducible: the same
sources give the same bytes and the same ``+<hash>`` local version, and v1's
``add_private_pip_wheel`` (which keys uploads by file name) never serves stale code.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amlops.content import hash_tree, walk_files
from amlops.errors import ConfigError

EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: fixed so the bytes are stable
IMPORTS_RUNTIME = re.compile(r"^\s*(from|import)\s+amlops\b", re.MULTILINE)
RUNTIME_PIP_RE = re.compile(r"^amlops(\[[^\]]*\])?\s*([=<>!~].*)?$")


def steps_needing_runtime(pipelines: Sequence[Any], default_env: str | None) -> set[str]:
    """Environments of steps whose scripts import ``amlops`` (the step runtime surface)."""
    found: set[str] = set()
    for pipeline in pipelines:
        for step in pipeline.steps:
            env = step.environment or default_env
            if env is None or env in found:
                continue
            for rel, path in walk_files(step.source_dir):
                if rel.endswith(".py") and IMPORTS_RUNTIME.search(path.read_text(errors="ignore")):
                    found.add(env)
                    break
    return found


def is_runtime_pin(spec: str) -> bool:
    """Whether a conda file's pip entry asks for this project (``amlops``, ``amlops==1.0``)."""
    return bool(RUNTIME_PIP_RE.match(spec.strip()))


def project_version(root: Path) -> str:
    pyproject = root / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot read project.version ({exc})") from None


def source_hash(root: Path) -> str:
    return hash_tree(root / "src" / "amlops")[:12]


def build_wheel(root: Path, dest: Path) -> Path:
    """Write ``amlops-<version>+<hash>-py3-none-any.whl`` into ``dest`` and return it."""
    package = root / "src" / "amlops"
    if not package.is_dir():
        raise ConfigError(f"{package}: not found; the private wheel is built from src/amlops")
    version = f"{project_version(root)}+{source_hash(root)}"
    dist_info = f"amlops-{version}.dist-info"
    files: list[tuple[str, bytes]] = [
        (f"amlops/{rel}", path.read_bytes()) for rel, path in walk_files(package)
    ]
    # No Requires-Dist: the environment's conda file pins what steps need.
    files.append(
        (
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: amlops\nVersion: {version}\n".encode(),
        )
    )
    files.append(
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: amlops\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files]
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"amlops-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
