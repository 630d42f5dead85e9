"""Every resource, data source and provider block of infra/ matches the azurerm 5.10 schema,
and so does the provider version infra/ asks for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from infra_hcl import INFRA_DIR, HclParseError, parse_dir
from infra_schema import ALLOWLIST_PATH, check, check_references, load_allowlist, load_schema

# The provider line infra/ targets is the one the cached schema describes.
SCHEMA_PACKAGE = "cdktn-provider-azurerm==18.9.0"
SCHEMA_AZURERM = "5.10.0"


def _texts(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.tf"))}


@pytest.fixture(scope="module")
def schema() -> dict:
    return load_schema()


@pytest.fixture(scope="module")
def allowlist():
    return load_allowlist()


def test_schema_cache_is_the_pinned_provider(schema):
    assert schema["source"].startswith(SCHEMA_PACKAGE)
    assert schema["source"].endswith(f"azurerm {SCHEMA_AZURERM}")
    # Spot-check the shape the checker relies on.
    cluster = schema["resources"]["azurerm_machine_learning_compute_cluster"]
    assert cluster["attributes"]["vm_size"] is True
    assert cluster["blocks"]["scale_settings"]["required"] is True
    # What this provider line is for: identity-mode workspaces (>= 4.77).
    workspace = schema["resources"]["azurerm_machine_learning_workspace"]
    assert "storage_account_access_type" in workspace["attributes"]
    assert "storage_account_access_type" in workspace["exported"]


def test_required_provider_is_the_schema_line(infra):
    """`~> 5.10` with the 5.10 schema: what the check accepts is what Terraform installs."""
    (terraform,) = infra["infra/terraform.tf"]["terraform"]
    providers = terraform["required_providers"][0]
    major, minor, _ = SCHEMA_AZURERM.split(".")
    assert providers["azurerm"]["source"] == "hashicorp/azurerm"
    assert providers["azurerm"]["version"] == f"~> {major}.{minor}"
    # Nothing but azurerm and time (time_sleep, see schema_allowlist.toml).
    assert set(k for k in providers if not k.startswith("__")) == {"azurerm", "time"}


def test_infra_matches_azurerm_schema(infra, schema, allowlist):
    errors = check(infra, schema, allowlist)
    assert not errors, "azurerm schema violations:\n" + "\n".join(errors)


def test_references_read_only_attributes_the_provider_has(schema):
    errors = check_references(_texts(INFRA_DIR), schema)
    assert not errors, "references to attributes azurerm 5.10 does not have:\n" + "\n".join(errors)


def test_reference_check_catches_removed_attributes(schema):
    """The azurerm 4 spellings this module used are gone from 5.10, direct or in a `for`."""
    texts = {
        "old.tf": (
            "locals {\n"
            "  a = azurerm_storage_container.data[each.key].resource_manager_id\n"
            "  b = { for k, c in azurerm_storage_container.data : k => c.resource_manager_id }\n"
            "  c = data.azurerm_client_config.current.object_id\n"
            "  d = azurerm_machine_learning_workspace.this.identity[0].principal_id\n"
            "}\n"
        )
    }
    errors = check_references(texts, schema)
    assert len(errors) == 2, errors
    assert all("'resource_manager_id'" in e for e in errors)
    assert errors[0].startswith("old.tf:2:") and errors[1].startswith("old.tf:3:")


def test_allowlist_entries_are_all_used(infra, schema, allowlist):
    """A stale exemption hides nothing today but would hide a real error tomorrow."""
    unused = []
    # "required" entries make the check stricter, so they never show up as needed.
    for entry in (a for a in allowlist if a.kind != "required"):
        others = [a for a in allowlist if a != entry]
        if not check(infra, schema, others):
            unused.append(f"{entry.path} ({entry.kind})")
    assert not unused, f"{ALLOWLIST_PATH.name} entries that nothing needs: {unused}"


def _copy_infra(tmp_path: Path) -> Path:
    target = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, target, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"negative test fixture is stale: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_checker_reports_unknown_and_missing_arguments(tmp_path, schema, allowlist):
    infra = _copy_infra(tmp_path)
    ml = infra / "ml.tf"
    # An unknown argument, a missing required argument, an unknown nested-block argument.
    _edit(
        ml,
        "  vm_priority                   = var.compute_vm_priority\n",
        "  vm_priorty = var.compute_vm_priority\n",
    )
    _edit(ml, "  vm_size                       = var.compute_vm_size\n", "")
    _edit(
        ml,
        "    min_node_count                       = 0\n",
        "    min_node_count = 0\n    max_idle = 3\n",
    )
    errors = "\n".join(check(parse_dir(infra), schema, allowlist))
    address = "azurerm_machine_learning_compute_cluster.this"
    assert f"ml.tf: {address}: vm_priorty: unknown argument or block 'vm_priorty'" in errors
    assert f"ml.tf: {address}: vm_size: missing required argument 'vm_size'" in errors
    assert f"ml.tf: {address}: vm_priority: missing required argument 'vm_priority'" in errors
    assert (
        f"ml.tf: {address}: scale_settings.max_idle: unknown argument or block 'max_idle'" in errors
    )


def test_checker_reports_missing_blocks_wrong_shapes_and_types(tmp_path, schema, allowlist):
    infra = _copy_infra(tmp_path)
    (infra / "extra.tf").write_text(
        'resource "azurerm_machine_learning_compute_cluster" "bad" {\n'
        '  name                          = "x"\n'
        '  location                      = "westeurope"\n'
        '  machine_learning_workspace_id = "id"\n'
        '  vm_size                       = "Standard_DS3_v2"\n'
        '  vm_priority                   = "Dedicated"\n'
        '  identity = { type = "SystemAssigned" }\n'
        "  tags {\n  }\n"
        "}\n"
        'resource "azurerm_no_such_thing" "x" {}\n'
        'data "azurerm_client_config" "odd" {\n  foo = 1\n}\n',
        encoding="utf-8",
    )
    errors = "\n".join(check(parse_dir(infra), schema, allowlist))
    address = "azurerm_machine_learning_compute_cluster.bad"
    assert f"extra.tf: {address}: scale_settings: missing required block 'scale_settings'" in errors
    assert (
        f"extra.tf: {address}: identity: 'identity' is a block, written here as an argument"
        in errors
    )
    assert f"extra.tf: {address}: tags: 'tags' is an argument, written here as a block" in errors
    assert (
        "extra.tf: azurerm_no_such_thing.x: unknown azurerm resource type 'azurerm_no_such_thing'"
        in errors
    )
    assert (
        "extra.tf: data.azurerm_client_config.odd: foo: unknown argument or block 'foo'" in errors
    )


def test_checker_checks_dynamic_blocks(tmp_path, schema, allowlist):
    infra = _copy_infra(tmp_path)
    (infra / "extra.tf").write_text(
        'resource "azurerm_monitor_diagnostic_setting" "bad" {\n'
        '  name               = "x"\n'
        '  target_resource_id = "id"\n'
        '  dynamic "metric" {\n'
        "    for_each = []\n"
        "    content {}\n"
        "  }\n"
        '  dynamic "enabled_log" {\n'
        "    for_each = []\n"
        "    content {\n      categroy = 1\n    }\n"
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    errors = "\n".join(check(parse_dir(infra), schema, allowlist))
    address = "azurerm_monitor_diagnostic_setting.bad"
    # `metric` was removed in azurerm 5 in favour of enabled_metric.
    assert f"extra.tf: {address}: metric: dynamic block for unknown block 'metric'" in errors
    assert f"extra.tf: {address}: enabled_log.categroy: unknown argument or block" in errors


def test_checker_enforces_the_features_block(tmp_path, schema, allowlist):
    infra = _copy_infra(tmp_path)
    providers = infra / "providers.tf"
    text = providers.read_text(encoding="utf-8")
    start = text.index("  features {")
    end = text.index("\n  }\n", start) + len("\n  }\n")
    providers.write_text(text[:start] + text[end:], encoding="utf-8")
    errors = check(parse_dir(infra), schema, allowlist)
    assert any(
        "provider.azurerm: features: missing required block 'features'" in e for e in errors
    ), errors


def test_broken_hcl_is_a_parse_error(tmp_path):
    """The `infra` fixture fails every HCL-reading test on a file python-hcl2 cannot parse."""
    infra = _copy_infra(tmp_path)
    (infra / "broken.tf").write_text('resource "azurerm_resource_group" "x" {\n  name =\n}\n')
    with pytest.raises(HclParseError, match="broken.tf"):
        parse_dir(infra)
