"""Shared fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import REPO


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """config/, pipelines/ and scripts/ copied so a test may edit them; workspace inside it."""
    root = tmp_path / "repo"
    for name in ("config", "pipelines", "scripts"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root
