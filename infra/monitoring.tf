resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${local.base_name}"
  location            = var.location
  resource_group_name = local.resource_group_name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_analytics_retention_days
  # Query and ingest with Entra ID only, no workspace shared keys.
  local_authentication_enabled = false
  # Behind the private link scope (private mode), nothing reaches it from the internet.
  internet_ingestion_access_type = local.monitor_private ? "Disabled" : "Enabled"
  internet_query_access_type     = local.monitor_private ? "Disabled" : "Enabled"
  tags                           = local.tags
}

# Workspace-based Application Insights: Azure ML requires one; its data lands in the
# Log Analytics workspace above.
resource "azurerm_application_insights" "this" {
  name                = "appi-${local.base_name}"
  location            = var.location
  resource_group_name = local.resource_group_name
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "web"
  # Telemetry only with Entra ID (local_authentication_disabled is gone in azurerm 5).
  local_authentication_enabled = false
  internet_ingestion_enabled   = local.monitor_private ? false : true
  internet_query_enabled       = local.monitor_private ? false : true
  tags                         = local.tags
}

locals {
  monitor_private = local.private && var.monitor_private_link_scope_enabled

  # Audit and service logs of the security-relevant resources go to Log Analytics. The
  # storage services accept only their own metric category: "AllMetrics" on a service
  # is rejected or shows a diff on every plan (azure-powershell#6520, azurerm#28734).
  storage_id = azurerm_storage_account.this.id
  diagnostic_targets = {
    key_vault = { id = azurerm_key_vault.this.id, metrics = ["AllMetrics"] }
    workspace = { id = azurerm_machine_learning_workspace.this.id, metrics = ["AllMetrics"] }
    # Every service of the data account: blob (datasets, snapshots), file
    # (workspacefilestore), queue and table (ParallelRunStep).
    storage_blob  = { id = "${local.storage_id}/blobServices/default", metrics = ["Transaction"] }
    storage_file  = { id = "${local.storage_id}/fileServices/default", metrics = ["Transaction"] }
    storage_queue = { id = "${local.storage_id}/queueServices/default", metrics = ["Transaction"] }
    storage_table = { id = "${local.storage_id}/tableServices/default", metrics = ["Transaction"] }
  }
}

resource "azurerm_monitor_diagnostic_setting" "this" {
  for_each = local.diagnostic_targets

  name                       = "diag-to-log-analytics"
  target_resource_id         = each.value.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category_group = "allLogs"
  }

  dynamic "enabled_metric" {
    for_each = each.value.metrics
    content {
      category = enabled_metric.value
    }
  }
}

# --- Private mode: Azure Monitor Private Link Scope (monitor_private_link_scope_enabled)
# As in the Azure Verified Module's private example: Log Analytics and Application
# Insights join one scope, reached through a private endpoint in the VNet, and accept
# ingestion and queries only through it.

resource "azurerm_monitor_private_link_scope" "this" {
  count = local.monitor_private ? 1 : 0

  name                  = "ampls-${local.base_name}"
  resource_group_name   = local.resource_group_name
  ingestion_access_mode = "PrivateOnly"
  query_access_mode     = "PrivateOnly"
  tags                  = local.tags
}

resource "azurerm_monitor_private_link_scoped_service" "this" {
  for_each = local.monitor_private ? {
    log_analytics        = azurerm_log_analytics_workspace.this.id
    application_insights = azurerm_application_insights.this.id
  } : {}

  name                = "amplss-${local.base_name}-${replace(each.key, "_", "-")}"
  resource_group_name = local.resource_group_name
  scope_name          = azurerm_monitor_private_link_scope.this[0].name
  linked_resource_id  = each.value
}
