"""The CLI and the runner stay light: heavy libraries load only where they are used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mlflow", "pandas", "sklearn", "azureml", "numpy", "pathspec")


def test_cli_and_runner_import_nothing_heavy():
    code = (
        "import sys, amlops.cli, amlops.deploy, amlops.backends.local.backend\n"
        "import amlops.backends.local.queries, amlops.backends.local.rest\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_only_serve_loads_the_web_stack():
    """Starlette and uvicorn are for `amlops serve`; every other command starts without them."""
    code = (
        "import sys, amlops.cli, amlops.deploy, amlops.backends.local.backend\n"
        "import amlops.backends.local.queries, amlops.backends.local.service\n"
        "print(','.join(m for m in ('starlette', 'uvicorn', 'anyio', 'h11') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
