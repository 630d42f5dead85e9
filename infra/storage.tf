locals {
  # Blob containers for the pipelines' data, keyed by role; deploy.py reads the names
  # from the storage_containers output.
  data_containers = {
    training = "training-data"
    scoring  = "scoring-data"
  }
}

resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV_AZURE_59:Public mode only (network_mode = "public"): GitHub-hosted runners have no fixed IPs, so the account stays reachable, with shared keys off and Entra ID RBAC as the only way in. Private mode turns public access off.
  #checkov:skip=CKV_AZURE_35:Public mode only: a default-deny firewall would lock out GitHub-hosted runners and the public compute nodes. Private mode sets default_action = Deny.
  #checkov:skip=CKV2_AZURE_33:Public mode has no private endpoints by design; private mode creates blob, file, queue and table endpoints (network.tf).
  #checkov:skip=CKV_AZURE_206:Replication is per environment (storage_replication_type); the default ZRS survives a zone outage, prod.tfvars uses GZRS.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys encrypt the data at rest; customer-managed keys would add a key, an identity and a rotation process that no requirement asks for yet.
  #checkov:skip=CKV_AZURE_33:The check wants classic Storage Analytics queue logging (queue_properties.logging), which azurerm 5 no longer offers on this resource; queue logs reach Log Analytics through the queue service's own diagnostic setting instead (monitoring.tf, storage_queue, like blob, file and table).
  name                     = "st${local.unique_name}"
  location                 = var.location
  resource_group_name      = local.resource_group_name
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.storage_replication_type

  # Entra ID only: no shared keys, no SAS signed with them, no local SFTP users.
  shared_access_key_enabled        = false
  default_to_oauth_authentication  = true
  local_user_enabled               = false
  min_tls_version                  = "TLS1_2"
  https_traffic_only_enabled       = true
  allow_nested_items_to_be_public  = false
  cross_tenant_replication_enabled = false
  public_network_access_enabled    = local.private ? false : true

  network_rules {
    default_action = local.private ? "Deny" : "Allow"
    # Azure ML's trusted-service access still works with default Deny.
    bypass = ["AzureServices"]
  }

  # Without shared keys only user delegation SAS remain; any valid for over a day is
  # logged as a policy violation.
  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }
  }

  tags = local.tags
}

resource "azurerm_storage_container" "data" {
  #checkov:skip=CKV2_AZURE_21:Blob reads are logged by the diagnostic setting on the account's blob service (monitoring.tf storage_blob, allLogs includes StorageRead). The check only accepts azurerm_log_analytics_storage_insights, the legacy path that needs a storage account key, which is disabled here.
  for_each = local.data_containers

  name                  = each.value
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

# --- Opt-in: datastore-change trigger (enable_datastore_change_trigger) -------------
# Azure ML v1 schedules that fire on datastore changes accept only an AzureBlob
# datastore with account-key credentials. Rather than turning shared keys on for the
# data account above, the opt-in creates a second, small account that holds trigger
# files only, with keys on. The trade-off is written on the variable (variables.tf).

resource "azurerm_storage_account" "trigger" {
  #checkov:skip=CKV2_AZURE_40:The whole point of this opt-in account: AML v1 datastore-change schedules require an account-key datastore. Off by default; holds trigger files only; see enable_datastore_change_trigger.
  #checkov:skip=CKV_AZURE_59:Only exists in public mode (precondition below): datastore-change schedules do not work with VNet-isolated workspaces.
  #checkov:skip=CKV_AZURE_35:Only exists in public mode (precondition below), where a default-deny firewall would lock out GitHub-hosted runners.
  #checkov:skip=CKV2_AZURE_33:Only exists in public mode (precondition below), which has no private endpoints by design.
  #checkov:skip=CKV_AZURE_206:Holds small trigger marker files only; losing them loses nothing that cannot be re-sent, so LRS is enough.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys encrypt the data at rest; the account holds trigger marker files only.
  #checkov:skip=CKV_AZURE_33:No queue logging at all on this opt-in account: it holds trigger marker files only and no queue is ever used; azurerm 5 has no queue_properties.logging to set anyway.
  count = var.enable_datastore_change_trigger ? 1 : 0

  name                     = "st${local.unique_name}t"
  location                 = var.location
  resource_group_name      = local.resource_group_name
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = "LRS"

  shared_access_key_enabled        = true
  local_user_enabled               = false
  min_tls_version                  = "TLS1_2"
  https_traffic_only_enabled       = true
  allow_nested_items_to_be_public  = false
  cross_tenant_replication_enabled = false
  public_network_access_enabled    = true

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = !local.private
      error_message = "enable_datastore_change_trigger needs network_mode = \"public\": Azure ML datastore-change schedules do not work with VNet-isolated workspaces."
    }
  }
}

resource "azurerm_storage_container" "trigger" {
  #checkov:skip=CKV2_AZURE_21:No blob read logging on this opt-in trigger account: it holds marker files only, no data. Storage insights (what the check wants) would also put the account key in Log Analytics.
  count = var.enable_datastore_change_trigger ? 1 : 0

  name                  = "trigger"
  storage_account_id    = azurerm_storage_account.trigger[0].id
  container_access_type = "private"
}
