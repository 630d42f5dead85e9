"""Helpers the tests share (importable because pyproject puts tests/ on pytest's pythonpath)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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
