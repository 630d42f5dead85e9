"""Security and shape properties of infra/, read from the parsed HCL."""

from __future__ import annotations

import re

import pytest
from infra_hcl import (
    INFRA_DIR,
    items,
    locals_map,
    one_resource,
    parse_text,
    resources,
    sub_block,
    top_blocks,
)

DEPLOY_OUTPUTS = {
    "subscription_id",
    "resource_group_name",
    "location",
    "workspace_name",
    "workspace_id",
    "compute_cluster_name",
    "compute_cluster_max_nodes",
    "datastore_names",
    "storage_account_name",
    "storage_containers",
    "key_vault_name",
    "managed_identity_client_id",
    "managed_identity_id",
}


def test_data_storage_account_is_entra_id_only_and_hardened(infra):
    account = one_resource(infra, "azurerm_storage_account", "this")
    assert account["shared_access_key_enabled"] is False
    assert account["default_to_oauth_authentication"] is True
    assert account["local_user_enabled"] is False
    assert account["min_tls_version"] == "TLS1_2"
    assert account["https_traffic_only_enabled"] is True
    assert account["allow_nested_items_to_be_public"] is False
    assert account["public_network_access_enabled"] == "${local.private ? false : true}"
    blob = sub_block(account, "blob_properties")
    assert blob["versioning_enabled"] is True
    assert (
        sub_block(blob, "delete_retention_policy")["days"]
        == "${var.blob_soft_delete_retention_days}"
    )
    assert (
        sub_block(blob, "container_delete_retention_policy")["days"]
        == "${var.blob_soft_delete_retention_days}"
    )


def test_every_storage_account_is_tls12_https_and_private_blobs(infra):
    accounts = resources(infra, "azurerm_storage_account")
    assert len(accounts) == 2
    for block in accounts:
        assert block.body["min_tls_version"] == "TLS1_2", block.address
        assert block.body["https_traffic_only_enabled"] is True, block.address
        assert block.body["allow_nested_items_to_be_public"] is False, block.address
        assert sub_block(block.body, "blob_properties")["versioning_enabled"] is True, block.address
    for block in resources(infra, "azurerm_storage_container"):
        assert block.body["container_access_type"] == "private", block.address


def test_provider_uses_entra_id_for_storage(infra):
    (provider,) = [b for b in top_blocks(infra, "provider") if b.labels == ("azurerm",)]
    assert provider.body["storage_use_azuread"] is True


def test_provider_features_decide_purge_behaviour(infra):
    (provider,) = [b for b in top_blocks(infra, "provider") if b.labels == ("azurerm",)]
    features = sub_block(provider.body, "features")
    # Soft-deleted workspaces block re-creating the same name: purge them on destroy.
    assert (
        sub_block(features, "machine_learning")["purge_soft_deleted_workspace_on_destroy"] is True
    )
    # The vault has purge protection: never try to purge, recover it on re-apply.
    key_vault = sub_block(features, "key_vault")
    assert key_vault["purge_soft_delete_on_destroy"] is False
    assert key_vault["recover_soft_deleted_key_vaults"] is True
    assert sub_block(features, "resource_group")["prevent_deletion_if_contains_resources"] is True
    assert sub_block(features, "storage")["data_plane_available"] is False
    assert sub_block(features, "application_insights")["disable_generated_rule"] is True


def test_key_vault_is_rbac_with_purge_protection(infra):
    vault = one_resource(infra, "azurerm_key_vault", "this")
    assert vault["rbac_authorization_enabled"] is True
    assert vault["purge_protection_enabled"] is True
    assert vault["soft_delete_retention_days"] == "${var.key_vault_soft_delete_retention_days}"
    assert "access_policy" not in vault
    assert "enable_rbac_authorization" not in vault, (
        "deprecated in azurerm 4.x; use rbac_authorization_enabled"
    )


def test_container_registry_has_no_admin_user_or_anonymous_pull(infra):
    registry = one_resource(infra, "azurerm_container_registry", "this")
    assert registry["admin_enabled"] is False
    assert registry["anonymous_pull_enabled"] is False


def test_compute_cluster_scales_to_zero_without_keys_or_ssh(infra):
    cluster = one_resource(infra, "azurerm_machine_learning_compute_cluster", "this")
    scale = sub_block(cluster, "scale_settings")
    assert scale["min_node_count"] == 0
    assert scale["max_node_count"] == "${var.compute_max_nodes}"
    assert (
        scale["scale_down_nodes_after_idle_duration"]
        == "${var.compute_idle_time_before_scale_down}"
    )
    assert cluster["vm_size"] == "${var.compute_vm_size}"
    assert cluster["vm_priority"] == "${var.compute_vm_priority}"
    assert cluster["local_auth_enabled"] is False
    assert cluster["ssh_public_access_enabled"] is False
    assert "ssh" not in cluster
    identity = sub_block(cluster, "identity")
    assert identity["type"] == "UserAssigned"
    assert identity["identity_ids"] == ["${azurerm_user_assigned_identity.compute.id}"]


def test_workspace_uses_identity_based_storage_access(infra):
    workspace = one_resource(infra, "azurerm_machine_learning_workspace", "this")
    assert sub_block(workspace, "identity")["type"] == "SystemAssigned"
    update = one_resource(infra, "azapi_update_resource", "workspace_datastore_auth")
    assert update["resource_id"] == "${azurerm_machine_learning_workspace.this.id}"
    assert update["body"]["properties"]["systemDatastoresAuthMode"] == "identity"


def test_data_datastores_hold_no_credentials(infra):
    datastore = one_resource(infra, "azurerm_machine_learning_datastore_blobstorage", "data")
    assert "account_key" not in datastore
    assert "shared_access_signature" not in datastore
    assert datastore["service_data_auth_identity"] == "WorkspaceSystemAssignedIdentity"
    assert set(locals_map(infra)["datastores"]) == {"training", "scoring"}


def test_trigger_datastore_exists_only_with_the_opt_in(infra):
    gated = {
        ("azurerm_storage_account", "trigger"),
        ("azurerm_storage_container", "trigger"),
        ("azurerm_machine_learning_datastore_blobstorage", "trigger"),
    }
    for block in resources(infra):
        uses_account_key = (
            "account_key" in block.body or block.body.get("shared_access_key_enabled") is True
        )
        if uses_account_key or tuple(block.labels) in gated:
            assert tuple(block.labels) in gated, (
                f"{block.address} uses account keys outside the opt-in"
            )
            assert block.body.get("count") == "${var.enable_datastore_change_trigger ? 1 : 0}", (
                block.address
            )
    (variable,) = [
        b for b in top_blocks(infra, "variable") if b.labels == ("enable_datastore_change_trigger",)
    ]
    assert variable.body["default"] is False
    assert "trade-off" in variable.body["description"].lower()


def test_no_role_assignment_wider_than_a_resource(infra):
    """Every grant is scoped to one resource (or one container): never a group or subscription."""
    assignments = resources(infra, "azurerm_role_assignment")
    assert assignments, "expected role assignments"
    for block in assignments:
        # All grants go through the commented table in identity.tf.
        assert block.body["for_each"] == "${local.role_assignments}", block.address
        assert block.body["scope"] == "${each.value.scope}", block.address
    text = (INFRA_DIR / "identity.tf").read_text(encoding="utf-8")
    scopes = re.findall(r"^\s*scope\s*=\s*(.+?)\s*$", text, flags=re.MULTILINE)
    one_resource_scope = re.compile(
        r"^(each\.value\.scope"
        r"|azurerm_(storage_account|container_registry|key_vault|machine_learning_workspace)\.this\.id"
        r"|container\.resource_manager_id)$"
    )
    assert len(scopes) >= 6
    wide = [scope for scope in scopes if not one_resource_scope.match(scope)]
    assert not wide, f"role assignment scopes wider than one resource: {wide}"
    everything = "\n".join(path.read_text(encoding="utf-8") for path in INFRA_DIR.glob("*.tf"))
    assert "azurerm_subscription" not in everything
    assert '"/subscriptions/' not in everything


def test_role_assignments_are_the_narrow_built_in_roles(infra):
    text = (INFRA_DIR / "identity.tf").read_text(encoding="utf-8")
    roles = set(re.findall(r'role\s*=\s*"([^"]+)"', text))
    assert roles == {
        "Storage Blob Data Contributor",
        "AcrPull",
        "Key Vault Secrets User",
        "AzureML Data Scientist",
    }
    assert "Owner" not in roles and "Contributor" not in roles
    # Every grant carries a comment saying why.
    for key in re.findall(r"^\s{6}(\w+) = \{$", text, flags=re.MULTILINE):
        preceding = text[: text.index(f"{key} = {{")].rstrip().splitlines()[-1].strip()
        assert preceding.startswith("#"), f"role assignment {key!r} has no comment saying why"


def test_private_mode_has_endpoints_for_every_dependency(infra):
    endpoints = locals_map(infra)["private_endpoints"]
    assert re.fullmatch(r"\$\{local\.private \? \{.*\} : \{\}\}", endpoints, flags=re.DOTALL), (
        f"private_endpoints should be `local.private ? {{...}} : {{}}`: {endpoints!r}"
    )
    pattern = r'resource_id = (azurerm_\w+)\.this\.id, subresource = "(\w+)"'
    pairs = set(re.findall(pattern, endpoints))
    assert {
        ("azurerm_machine_learning_workspace", "amlworkspace"),
        ("azurerm_storage_account", "blob"),
        ("azurerm_storage_account", "file"),
        ("azurerm_key_vault", "vault"),
        ("azurerm_container_registry", "registry"),
    } <= pairs, pairs
    endpoint = one_resource(infra, "azurerm_private_endpoint", "this")
    assert endpoint["for_each"] == "${local.private_endpoints}"
    assert sub_block(endpoint, "private_dns_zone_group")["private_dns_zone_ids"]
    zones = locals_map(infra)["private_dns_zones"]
    for zone in (
        "privatelink.api.azureml.ms",
        "privatelink.blob.core.windows.net",
        "privatelink.vaultcore.azure.net",
    ):
        assert zone in zones


def test_private_mode_turns_public_access_off(infra):
    for resource_type in (
        "azurerm_machine_learning_workspace",
        "azurerm_storage_account",
        "azurerm_key_vault",
        "azurerm_container_registry",
    ):
        body = one_resource(infra, resource_type, "this")
        assert body["public_network_access_enabled"] == "${local.private ? false : true}", (
            resource_type
        )
    cluster = one_resource(infra, "azurerm_machine_learning_compute_cluster", "this")
    assert cluster["node_public_ip_enabled"] == "${local.private ? false : true}"
    assert cluster["subnet_resource_id"] == "${local.private ? azurerm_subnet.compute[0].id : null}"
    for block in resources(infra):
        if block.file.endswith("network.tf") and block.labels[0] != "azurerm_private_endpoint":
            gate = block.body.get("count") or block.body.get("for_each")
            assert gate in ("${local.private ? 1 : 0}", "${local.private_dns_zones}"), (
                f"{block.address} not private-only"
            )


def test_every_variable_is_typed_and_described(infra):
    variables = list(top_blocks(infra, "variable"))
    assert len(variables) >= 15
    for block in variables:
        assert block.file.endswith("variables.tf"), f"{block.address} belongs in variables.tf"
        assert block.body.get("type"), f"{block.address} has no type"
        description = block.body.get("description", "")
        assert len(description) >= 20, f"{block.address} has no real description"
        if "default" not in block.body or block.body["default"] is not None:
            assert block.body.get("nullable") is False, (
                f"{block.address}: set nullable = false (or default = null)"
            )


def test_every_output_is_described_and_deploy_outputs_exist(infra):
    outputs = {b.labels[0]: b for b in top_blocks(infra, "output")}
    missing = DEPLOY_OUTPUTS - set(outputs)
    assert not missing, f"outputs deploy.py reads are missing: {sorted(missing)}"
    for name, block in outputs.items():
        assert block.body.get("description"), f"output {name} has no description"
        assert block.body.get("sensitive") is not True, (
            f"output {name}: keep secrets out of outputs"
        )
        for secret in ("primary_access_key", "connection_string", "instrumentation_key", "secret"):
            assert secret not in str(block.body["value"]), f"output {name} exposes {secret}"


def test_datastore_names_output_has_trigger_only_with_the_opt_in(infra):
    (block,) = [b for b in top_blocks(infra, "output") if b.labels == ("datastore_names",)]
    value = block.body["value"]
    assert "azurerm_machine_learning_datastore_blobstorage.data" in value
    assert "var.enable_datastore_change_trigger ? {trigger = " in value
    assert value.endswith(": {})}")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_tfvars_only_set_declared_variables(infra, env):
    declared = {b.labels[0] for b in top_blocks(infra, "variable")}
    required = {b.labels[0] for b in top_blocks(infra, "variable") if "default" not in b.body}
    path = INFRA_DIR / "envs" / f"{env}.tfvars"
    values = dict(items(parse_text(path.read_text(encoding="utf-8"), str(path))))
    unknown = set(values) - declared
    assert not unknown, f"envs/{env}.tfvars sets undeclared variables: {sorted(unknown)}"
    assert required <= set(values), (
        f"envs/{env}.tfvars misses required variables: {sorted(required - set(values))}"
    )
    assert values["environment"] == env


def test_prod_is_private_and_dev_is_public(infra):
    dev = parse_text((INFRA_DIR / "envs" / "dev.tfvars").read_text(encoding="utf-8"))
    prod = parse_text((INFRA_DIR / "envs" / "prod.tfvars").read_text(encoding="utf-8"))
    assert dev["network_mode"] == "public"
    assert prod["network_mode"] == "private"
    assert prod["container_registry_sku"] == "Premium"
    (default,) = [b for b in top_blocks(infra, "variable") if b.labels == ("network_mode",)]
    assert default.body["default"] == "private", "secure by default"


def test_backend_is_partial_azurerm(infra):
    (terraform,) = infra["infra/terraform.tf"]["terraform"]
    backend = terraform["backend"][0]
    assert list(k for k, _ in items(backend)) == ["azurerm"]
    assert dict(items(backend["azurerm"])) == {}, "backend settings come from -backend-config files"
    assert terraform["required_providers"][0]["azurerm"]["version"].startswith("~> 4.")
    example = parse_text((INFRA_DIR / "backend.example.hcl").read_text(encoding="utf-8"))
    assert {"resource_group_name", "storage_account_name", "container_name", "key"} <= set(example)
    assert example["use_azuread_auth"] is True


def test_no_unused_variables_or_locals(infra):
    """Like tflint's terraform_unused_declarations: a dead input misleads whoever sets it."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(INFRA_DIR.glob("*.tf")))
    unused = [
        f"var.{block.labels[0]}"
        for block in top_blocks(infra, "variable")
        if not re.search(rf"\bvar\.{block.labels[0]}\b", text)
    ]
    unused += [
        f"local.{name}" for name in locals_map(infra) if not re.search(rf"\blocal\.{name}\b", text)
    ]
    assert not unused, f"declared but never used: {unused}"
