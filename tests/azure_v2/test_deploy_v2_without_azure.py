"""``deploy.py --env dev-v2`` on a machine without Azure, as a real subprocess of a fresh copy
of the repo: it loads config and builds the pipelines, then stops with one line naming what
to set, exit code 2, no traceback. Nothing is faked; nothing reaches a network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, copy_repo

# Whatever could make auth or coordinates resolve on this machine is left out.
AZURE_VARS = ("AZURE_", "ARM_", "AMLOPS_", "ACTIONS_ID_TOKEN", "MSI_", "IDENTITY_")
COORDINATES = {
    "AMLOPS_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AMLOPS_RESOURCE_GROUP": "rg-amlops-dev",
    "AMLOPS_WORKSPACE_NAME": "mlw-amlops-dev",
}


def terraform_bin() -> str:
    binary = Path(os.environ.get("AMLOPS_TOOLS_BIN", REPO / ".venv-tools" / "bin")) / "terraform"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary}: run `make tools`")
    return str(binary)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({}, "config/dev-v2.yml: workspace.subscription_id is not set"),
        (COORDINATES, "workspace.auth: no credentials found"),
    ],
)
def test_deploy_dev_v2_stops_with_one_line_about_the_workspace_or_credentials(
    tmp_path, extra, expected
):
    root = copy_repo(tmp_path / "repo")
    # As in a fresh clone: infra/ names its remote state and terraform init never ran.
    (root / "infra" / "main.tf").write_text('terraform {\n  backend "azurerm" {}\n}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(AZURE_VARS)}
    env.update(extra)
    env["PATH"] = str(Path(sys.executable).parent)  # no az CLI to fall back on
    env["TERRAFORM_BIN"] = terraform_bin()
    env["HOME"] = str(tmp_path)  # no Azure CLI profile either
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "deploy.py"), "--env", "dev-v2"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0]
    assert not (root / ".amlops").exists()
