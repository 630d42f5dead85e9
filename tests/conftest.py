"""Shared fixtures: the repo root, and a throwaway copy of the repo's config and pipelines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """config/, pipelines/ and scripts/ copied so a test may edit them; workspace inside it."""
    root = tmp_path / "repo"
    for name in ("config", "pipelines", "scripts"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def run_deploy(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """scripts/deploy.py as a user runs it: a real subprocess of this interpreter."""
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "deploy.py"), *args],
        capture_output=True,
        text=True,
        cwd=root,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"deploy.py {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc
