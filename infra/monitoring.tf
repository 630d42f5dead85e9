resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${local.base_name}"
  location            = var.location
  resource_group_name = local.resource_group_name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_analytics_retention_days
  # Query and ingest with Entra ID only, no workspace shared keys.
  local_authentication_enabled = false
  tags                         = local.tags
}

# Workspace-based Application Insights: Azure ML requires one; its data lands in the
# Log Analytics workspace above.
resource "azurerm_application_insights" "this" {
  name                          = "appi-${local.base_name}"
  location                      = var.location
  resource_group_name           = local.resource_group_name
  workspace_id                  = azurerm_log_analytics_workspace.this.id
  application_type              = "web"
  local_authentication_disabled = true
  tags                          = local.tags
}

# Audit and service logs of the security-relevant resources go to Log Analytics.
locals {
  diagnostic_targets = {
    key_vault = azurerm_key_vault.this.id
    workspace = azurerm_machine_learning_workspace.this.id
    storage   = "${azurerm_storage_account.this.id}/blobServices/default"
  }
}

resource "azurerm_monitor_diagnostic_setting" "this" {
  for_each = local.diagnostic_targets

  name                       = "diag-to-log-analytics"
  target_resource_id         = each.value
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category_group = "allLogs"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}
