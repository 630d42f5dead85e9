"""`terraform fmt` agrees with every .tf and .tfvars file under infra/."""

from __future__ import annotations

import os
import subprocess

from infra_hcl import INFRA_DIR, require_tool


def terraform_env() -> dict[str, str]:
    """No version check-in calls, no interactive prompts, no user CLI config."""
    return {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": os.devnull,
    }


def test_terraform_fmt_is_clean():
    terraform = require_tool("terraform", path_fallback=True)
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA_DIR)],
        capture_output=True,
        text=True,
        env=terraform_env(),
        timeout=120,
    )
    assert result.returncode == 0, (
        f"`terraform fmt -check -recursive infra` failed (run `terraform fmt -recursive infra`):\n"
        f"{result.stdout}{result.stderr}"
    )


def test_terraform_fmt_check_catches_misformatting(tmp_path):
    """The check above can fail: a misaligned argument makes `fmt -check` exit non-zero."""
    terraform = require_tool("terraform", path_fallback=True)
    (tmp_path / "main.tf").write_text("locals {\n  a = 1\n  bbb    = 2\n}\n", encoding="utf-8")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-no-color", str(tmp_path)],
        capture_output=True,
        text=True,
        env=terraform_env(),
        timeout=120,
    )
    assert result.returncode != 0
    assert "main.tf" in result.stdout
