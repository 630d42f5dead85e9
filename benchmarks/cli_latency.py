"""How long the read-only commands take, as ratios to ``amlops runs list``, the lightest one.

On one sample workspace (the repository's config deployed once into a temporary copy), whole
processes, best of several repeats: ``amlops runs list``, ``amlops models list`` (reads the
MLflow registry's tables, no mlflow import), ``deploy.py --plan`` and ``make deploy`` with
nothing to do (every train step reused; batch scoring runs by design, allow_reuse=False), as a
user types it: make checks the environment is installed, then runs the deploy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPEATS = 5


def best(argv: list[str], cwd: Path, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        settle(cwd)
    return min(times)


def settle(root: Path) -> None:
    """Let the MLflow records of the runs a deploy made finish (they outlive the deploy's
    process by the seconds mlflow takes to import), so the next figure does not share the
    cores with them."""
    from amlops.backends.local.mlflow_record import wait_for_records
    from amlops.backends.local.workspace import LocalWorkspace

    wait_for_records(LocalWorkspace(root / ".amlops").mlflow_records)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="amlops-bench-") as tmp:
        root = Path(tmp) / "repo"
        for name in ("config", "pipelines", "scripts", "requirements"):
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("Makefile", "pyproject.toml"):
            shutil.copy2(REPO / name, root / name)  # their times: make sees nothing to install
        (root / ".venv").symlink_to(REPO / ".venv")
        deploy = [sys.executable, str(root / "scripts" / "deploy.py")]
        amlops = [sys.executable, "-m", "amlops.cli"]
        print("deploying the sample once (a few minutes on 2 cores) ...", flush=True)
        subprocess.run(deploy, cwd=root, check=True, capture_output=True)
        settle(root)
        figures = {
            "amlops runs list": best([*amlops, "runs", "list"], root),
            "amlops models list": best([*amlops, "models", "list"], root),
            "deploy.py --plan": best([*deploy, "--plan"], root),
            "make deploy, nothing to do": best(["make", "--quiet", "deploy"], root, repeats=2),
        }
    base = figures["amlops runs list"]
    print(f"whole processes, best of {REPEATS} (the no-op make deploy: best of 2)")
    for name, seconds in figures.items():
        print(f"  {name:<26} {seconds:6.3f} s  {seconds / base:5.1f}x runs list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
