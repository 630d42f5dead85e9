"""A pipeline the Azure backend cannot express stops ``deploy.py`` before anything reaches
the workspace: the deploy compiles offline first, as ``amlops export`` does, so the refusal
comes before coordinates, credentials or the register stage. A real subprocess of a copy of
the repo; nothing is faked and nothing reaches a network."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import copy_repo

AZURE_VARS = ("AZURE_", "ARM_", "AMLOPS_", "ACTIONS_ID_TOKEN", "MSI_", "IDENTITY_")


def test_a_pipeline_v1_cannot_build_stops_the_deploy_before_the_workspace(tmp_path):
    root = copy_repo(tmp_path / "repo")
    tuning = (root / "config" / "local-tuning.yml").read_text()
    azure = tuning.replace("  backend: local\n  path: .amlops\n", "  backend: azureml_v1\n")
    assert azure != tuning
    (root / "config" / "tuning-v1.yml").write_text(azure)
    env = {k: v for k, v in os.environ.items() if not k.startswith(AZURE_VARS)}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "deploy.py"), "--env", "tuning-v1"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    # The SDK's own advice on the sweep's settings (a Python warning) may come first.
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in proc.stderr
    # Without the offline compile this would be "workspace.subscription_id is not set".
    assert "pipeline 'train_automl': step 'evaluate' reads 'model'" in error
    assert not (root / ".amlops").exists()
