data "azurerm_client_config" "current" {}

resource "azurerm_resource_group" "this" {
  count = var.existing_resource_group_name == null ? 1 : 0

  name     = "rg-${local.base_name}"
  location = var.location
  tags     = local.tags
}

data "azurerm_resource_group" "existing" {
  count = var.existing_resource_group_name == null ? 0 : 1

  name = var.existing_resource_group_name
}

locals {
  private = var.network_mode == "private"

  # Names: <kind>-<prefix>-<env> where dashes are allowed; the globally unique ones
  # (storage, key vault, registry) add a suffix that is stable per subscription.
  base_name   = "${var.name_prefix}-${var.environment}"
  suffix      = coalesce(var.name_suffix, substr(sha1("${data.azurerm_client_config.current.subscription_id}/${var.name_prefix}/${var.environment}"), 0, 6))
  unique_name = "${var.name_prefix}${var.environment}${local.suffix}" # <= 19 characters

  resource_group_name = var.existing_resource_group_name == null ? azurerm_resource_group.this[0].name : data.azurerm_resource_group.existing[0].name

  tags = merge({ project = "amlops", environment = var.environment, managed-by = "terraform" }, var.tags)
}
