"""Helpers the tests share (importable because pyproject puts tests/ on pytest's pythonpath)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The sample config/local.yml as shipped: tests deploy it, so a user's own edits to the live
# config/local.yml (their data, batch scoring removed) never change what the tests see.
SAMPLE_CONFIG = Path(__file__).resolve().parent / "fixtures" / "config" / "local.yml"
COPIED = ("config", "pipelines", "scripts", "src", "data")


def copy_repo(root: Path, *, sample: bool = True) -> Path:
    """What a deploy reads, copied so a test may edit it: config/ (with the sample local.yml
    unless ``sample`` is False), pipelines/, scripts/, src/ and pyproject.toml, and data/ if
    the user has one; infra/ exists (the Azure configs name it), empty."""
    for name in COPIED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "infra").mkdir(exist_ok=True)
    if sample:
        shutil.copy(SAMPLE_CONFIG, root / "config" / "local.yml")
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
