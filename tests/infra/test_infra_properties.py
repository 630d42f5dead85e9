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

# Built-in role definition ids (the same in every tenant) of the roles identity.tf assigns;
# the RBAC Administrator condition in infra/README.md must list exactly these.
ROLE_DEFINITION_IDS = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage File Data Privileged Contributor": "69566ab7-960f-475b-8e7c-b3118f30c6bd",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
}

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
    """Created in identity mode by azurerm itself: azurerm >= 4.77 sends the attribute on
    create and on every update, so a second tool flipping it (the old azapi update)
    alternated keys and identity from one apply to the next."""
    workspace = one_resource(infra, "azurerm_machine_learning_workspace", "this")
    assert sub_block(workspace, "identity")["type"] == "SystemAssigned"
    assert workspace["storage_account_access_type"] == "Identity"
    everything = "\n".join(p.read_text(encoding="utf-8") for p in INFRA_DIR.glob("*.tf"))
    assert "azapi" not in everything, "nothing else may set the workspace's auth mode"
    assert "systemDatastoresAuthMode" not in everything


def test_prod_cannot_be_public_by_accident(infra):
    workspace = one_resource(infra, "azurerm_machine_learning_workspace", "this")
    (precondition,) = sub_block(workspace, "lifecycle")["precondition"]
    assert precondition["condition"] == (
        "${local.private || !contains(var.protected_environments, var.environment)}"
    )
    (variable,) = [
        b for b in top_blocks(infra, "variable") if b.labels == ("protected_environments",)
    ]
    assert variable.body["default"] == ["prod"]


def test_roles_propagate_before_anything_uses_them(infra):
    sleep = one_resource(infra, "time_sleep", "role_propagation")
    assert sleep["create_duration"] == "${var.role_propagation_wait}"
    assert "azurerm_role_assignment.this" in sleep["triggers"]["assignments"]
    cluster = one_resource(infra, "azurerm_machine_learning_compute_cluster", "this")
    assert "${time_sleep.role_propagation}" in cluster["depends_on"]
    assert "${azurerm_role_assignment.this}" not in cluster["depends_on"]
    datastore = one_resource(infra, "azurerm_machine_learning_datastore_blobstorage", "data")
    assert datastore["depends_on"] == ["${time_sleep.role_propagation}"]


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


def _grants(infra) -> dict[str, dict]:
    """identity.tf's role table: key -> {role, principal, scope} as written in the HCL."""
    text = (INFRA_DIR / "identity.tf").read_text(encoding="utf-8")
    grants = {}
    for match in re.finditer(r"^\s{6}(\w+) = \{\n(.*?)^\s{6}\}", text, re.MULTILINE | re.DOTALL):
        body = dict(re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", match[2], re.MULTILINE))
        grants[match[1]] = {
            "role": body["role"].strip('"'),
            "principal": body["principal_id"],
            "scope": body["scope"],
        }
    return grants


def test_role_assignments_are_the_narrow_built_in_roles(infra):
    text = (INFRA_DIR / "identity.tf").read_text(encoding="utf-8")
    roles = {g["role"] for g in _grants(infra).values()}
    assert roles == set(ROLE_DEFINITION_IDS), "a new role needs its id in ROLE_DEFINITION_IDS too"
    assert "Owner" not in roles and "Contributor" not in roles
    # Every grant carries a comment saying why (or shares the one above its group).
    for key in re.findall(r"^\s{6}(\w+) = \{$", text, flags=re.MULTILINE):
        preceding = text[: text.index(f"{key} = {{")].rstrip().splitlines()[-1].strip()
        assert preceding.startswith("#") or preceding == "}", (
            f"role assignment {key!r} has no comment saying why"
        )


def test_each_identity_gets_what_its_work_needs(infra):
    grants = _grants(infra)

    def roles(principal: str) -> set[tuple[str, str]]:
        return {(g["role"], g["scope"]) for g in grants.values() if g["principal"] == principal}

    account = "azurerm_storage_account.this.id"
    registry = "azurerm_container_registry.this.id"
    # ParallelRunStep: blob, queue and table on the account (Microsoft's identity-storage doc).
    assert {
        ("Storage Blob Data Contributor", account),
        ("Storage Queue Data Contributor", account),
        ("Storage Table Data Contributor", account),
        ("AcrPull", registry),
        ("AcrPush", registry),
        ("Key Vault Secrets User", "azurerm_key_vault.this.id"),
    } <= roles("local.compute_principal")
    # The deploy stages (register uploads, build, publish, schedule), by default.
    assert roles("local.deployer_object_id") == {
        ("AzureML Data Scientist", "azurerm_machine_learning_workspace.this.id"),
        ("Storage Blob Data Contributor", account),
        ("Storage File Data Privileged Contributor", account),
    }
    # The workspace identity's storage roles, declared rather than assumed.
    assert roles("local.workspace_principal") == {
        ("Storage Blob Data Contributor", account),
        ("Storage File Data Privileged Contributor", account),
    }
    text = (INFRA_DIR / "identity.tf").read_text(encoding="utf-8")
    # Not optional any more: null means "whoever runs Terraform", never "nobody".
    assert (
        "coalesce(var.deployment_principal_object_id, data.azurerm_client_config.current.object_id)"
        in text
    )
    # AcrPush only where image builds run on the cluster (private mode, ml.tf).
    assert re.search(r"local\.private \? \{\s*#[^{]*compute_acr_push = \{", text, re.DOTALL)


def test_readme_rbac_condition_covers_every_role_this_module_assigns():
    """The Terraform identity's RBAC Administrator grant is limited to these role ids."""
    readme = (INFRA_DIR / "README.md").read_text(encoding="utf-8")
    at = readme.index("--condition")
    # The whole code block that holds the command (the ids sit in a variable above it).
    condition = readme[readme.rindex("```bash", 0, at) : readme.index("```", at)]
    guid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    listed = set(re.findall(guid, condition))
    wanted = set(ROLE_DEFINITION_IDS.values())
    assert listed == wanted, f"missing: {wanted - listed}, extra: {listed - wanted}"


def test_private_mode_has_endpoints_for_every_dependency(infra):
    endpoints = locals_map(infra)["private_endpoints"]
    assert re.fullmatch(
        r"\$\{local\.private \? (merge\()?\{.*\}\)? : \{\}\}", endpoints, flags=re.DOTALL
    ), f"private_endpoints should be `local.private ? ... : {{}}`: {endpoints!r}"
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
            assert gate in (
                "${local.private ? 1 : 0}",
                "${local.private_dns_zones}",
                "${local.private_dns_zone_links}",
            ), f"{block.address} not private-only"


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
    # The provider line itself: test_infra_schema.test_required_provider_is_the_schema_line.
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


def test_private_dns_zones_link_extra_networks(infra):
    """A runner in a hub or peered network resolves the private names only through a link."""
    link = one_resource(infra, "azurerm_private_dns_zone_virtual_network_link", "this")
    assert link["for_each"] == "${local.private_dns_zone_links}"
    assert link["virtual_network_id"] == "${local.dns_link_vnet_ids[each.value.vnet]}"
    links = locals_map(infra)
    assert "var.private_dns_zone_link_vnet_ids" in links["dns_link_vnet_ids"]
    assert "azurerm_virtual_network.this[0].id" in links["dns_link_vnet_ids"]
    assert (
        "setproduct(keys(local.private_dns_zones), keys(local.dns_link_vnet_ids))"
        in (links["private_dns_zone_links"])
    )


def test_every_storage_service_logs_to_log_analytics_with_its_own_metrics(infra):
    """CKV_AZURE_33's skip points here: queue (and blob, file, table) logs reach Log
    Analytics. AllMetrics on a storage service is rejected or diffs on every plan."""
    targets = locals_map(infra)["diagnostic_targets"]
    for service in ("blob", "file", "queue", "table"):
        entry = targets.get(f"storage_{service}")
        assert entry, f"no diagnostic setting for the {service} service: {targets}"
        assert entry["id"] == f"${{local.storage_id}}/{service}Services/default"
        assert entry["metrics"] == ["Transaction"], f"{service}: {entry['metrics']}"
    assert locals_map(infra)["storage_id"] == "${azurerm_storage_account.this.id}"
    setting = one_resource(infra, "azurerm_monitor_diagnostic_setting", "this")
    assert setting["for_each"] == "${local.diagnostic_targets}"
    assert sub_block(setting, "enabled_log")["category_group"] == "allLogs"


def test_private_mode_puts_monitoring_behind_a_private_link_scope(infra):
    scope = one_resource(infra, "azurerm_monitor_private_link_scope", "this")
    assert scope["count"] == "${local.monitor_private ? 1 : 0}"
    assert scope["ingestion_access_mode"] == "PrivateOnly"
    assert scope["query_access_mode"] == "PrivateOnly"
    scoped = one_resource(infra, "azurerm_monitor_private_link_scoped_service", "this")
    assert "azurerm_log_analytics_workspace.this.id" in scoped["for_each"]
    assert "azurerm_application_insights.this.id" in scoped["for_each"]
    assert locals_map(infra)["monitor_private"] == (
        "${local.private && var.monitor_private_link_scope_enabled}"
    )
    assert 'subresource = "azuremonitor"' in locals_map(infra)["private_endpoints"]
    workspace = one_resource(infra, "azurerm_log_analytics_workspace", "this")
    assert workspace["internet_ingestion_access_type"] == (
        '${local.monitor_private ? "Disabled" : "Enabled"}'
    )
    insights = one_resource(infra, "azurerm_application_insights", "this")
    assert insights["local_authentication_enabled"] is False
    assert insights["internet_query_enabled"] == "${local.monitor_private ? false : true}"


def test_provider_gets_a_subscription(infra):
    (provider,) = [b for b in top_blocks(infra, "provider") if b.labels == ("azurerm",)]
    assert provider.body["subscription_id"] == "${var.subscription_id}"
