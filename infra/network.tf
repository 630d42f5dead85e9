# Private mode only (network_mode = "private"): a VNet with a compute subnet and a
# private endpoint subnet, private DNS for every endpoint, and a NAT gateway as the
# nodes' only way out (they have no public IPs). Public mode creates none of this.

resource "azurerm_virtual_network" "this" {
  count = local.private ? 1 : 0

  name                = "vnet-${local.base_name}"
  location            = var.location
  resource_group_name = local.resource_group_name
  address_space       = var.vnet_address_space
  tags                = local.tags
}

resource "azurerm_subnet" "compute" {
  count = local.private ? 1 : 0

  name                 = "snet-compute"
  resource_group_name  = local.resource_group_name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [var.compute_subnet_address_prefix]
  # Outbound goes through the NAT gateway, never the implicit default route.
  default_outbound_access_enabled = false
}

resource "azurerm_subnet" "private_endpoints" {
  count = local.private ? 1 : 0

  name                            = "snet-private-endpoints"
  resource_group_name             = local.resource_group_name
  virtual_network_name            = azurerm_virtual_network.this[0].name
  address_prefixes                = [var.private_endpoint_subnet_address_prefix]
  default_outbound_access_enabled = false
  # Let the NSG apply to private endpoint traffic too.
  private_endpoint_network_policies = "Enabled"
}

# No inbound rules: the defaults allow traffic within the VNet and from the Azure load
# balancer and deny the rest. Azure ML compute without public IPs needs nothing more.
resource "azurerm_network_security_group" "this" {
  count = local.private ? 1 : 0

  name                = "nsg-${local.base_name}"
  location            = var.location
  resource_group_name = local.resource_group_name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "compute" {
  count = local.private ? 1 : 0

  subnet_id                 = azurerm_subnet.compute[0].id
  network_security_group_id = azurerm_network_security_group.this[0].id
}

resource "azurerm_subnet_network_security_group_association" "private_endpoints" {
  count = local.private ? 1 : 0

  subnet_id                 = azurerm_subnet.private_endpoints[0].id
  network_security_group_id = azurerm_network_security_group.this[0].id
}

# Nodes without public IPs still need outbound access (Azure ML control plane,
# package feeds, Microsoft Entra ID); the NAT gateway gives them one fixed egress IP.
resource "azurerm_public_ip" "nat" {
  count = local.private ? 1 : 0

  name                = "pip-${local.base_name}-nat"
  location            = var.location
  resource_group_name = local.resource_group_name
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = local.tags
}

resource "azurerm_nat_gateway" "this" {
  count = local.private ? 1 : 0

  name                = "ng-${local.base_name}"
  location            = var.location
  resource_group_name = local.resource_group_name
  sku_name            = "Standard"
  tags                = local.tags
}

resource "azurerm_nat_gateway_public_ip_association" "this" {
  count = local.private ? 1 : 0

  nat_gateway_id       = azurerm_nat_gateway.this[0].id
  public_ip_address_id = azurerm_public_ip.nat[0].id
}

resource "azurerm_subnet_nat_gateway_association" "compute" {
  count = local.private ? 1 : 0

  subnet_id      = azurerm_subnet.compute[0].id
  nat_gateway_id = azurerm_nat_gateway.this[0].id
}

locals {
  # Private DNS zones of the Azure public cloud (sovereign clouds use other suffixes).
  private_dns_zones = local.private ? merge(
    {
      aml_api       = "privatelink.api.azureml.ms"
      aml_notebooks = "privatelink.notebooks.azure.net"
      blob          = "privatelink.blob.core.windows.net"
      file          = "privatelink.file.core.windows.net"
      queue         = "privatelink.queue.core.windows.net"
      table         = "privatelink.table.core.windows.net"
      vault         = "privatelink.vaultcore.azure.net"
      registry      = "privatelink.azurecr.io"
    },
    # Azure Monitor's private link (monitoring.tf) answers on these; its agent solution
    # packs also use the blob zone above.
    local.monitor_private ? {
      monitor  = "privatelink.monitor.azure.com"
      oms      = "privatelink.oms.opinsights.azure.com"
      ods      = "privatelink.ods.opinsights.azure.com"
      agentsvc = "privatelink.agentsvc.azure-automation.net"
    } : {},
  ) : {}

  # Every zone is linked to the module's VNet and to each network in
  # private_dns_zone_link_vnet_ids (a hub, or the network of a self-hosted runner):
  # without a link, that network resolves the public names, which lead nowhere.
  dns_link_vnet_ids = local.private ? merge(
    { module = azurerm_virtual_network.this[0].id },
    var.private_dns_zone_link_vnet_ids,
  ) : {}
  private_dns_zone_links = {
    for pair in setproduct(keys(local.private_dns_zones), keys(local.dns_link_vnet_ids)) :
    "${pair[0]}.${pair[1]}" => { zone = pair[0], vnet = pair[1] }
  }

  # One private endpoint per (resource, sub-resource). Storage needs blob and file for
  # the workspace's datastores, queue and table for ParallelRunStep (batch scoring).
  private_endpoints = local.private ? merge(
    {
      workspace = { resource_id = azurerm_machine_learning_workspace.this.id, subresource = "amlworkspace", zones = ["aml_api", "aml_notebooks"] }
      blob      = { resource_id = azurerm_storage_account.this.id, subresource = "blob", zones = ["blob"] }
      file      = { resource_id = azurerm_storage_account.this.id, subresource = "file", zones = ["file"] }
      queue     = { resource_id = azurerm_storage_account.this.id, subresource = "queue", zones = ["queue"] }
      table     = { resource_id = azurerm_storage_account.this.id, subresource = "table", zones = ["table"] }
      vault     = { resource_id = azurerm_key_vault.this.id, subresource = "vault", zones = ["vault"] }
      registry  = { resource_id = azurerm_container_registry.this.id, subresource = "registry", zones = ["registry"] }
    },
    local.monitor_private ? {
      monitor = { resource_id = azurerm_monitor_private_link_scope.this[0].id, subresource = "azuremonitor", zones = ["monitor", "oms", "ods", "agentsvc", "blob"] }
    } : {},
  ) : {}
}

resource "azurerm_private_dns_zone" "this" {
  for_each = local.private_dns_zones

  name                = each.value
  resource_group_name = local.resource_group_name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "this" {
  for_each = local.private_dns_zone_links

  name                 = "link-${local.base_name}-${each.value.vnet}"
  private_dns_zone_id  = azurerm_private_dns_zone.this[each.value.zone].id
  virtual_network_id   = local.dns_link_vnet_ids[each.value.vnet]
  registration_enabled = false
  tags                 = local.tags
}

resource "azurerm_private_endpoint" "this" {
  for_each = local.private_endpoints

  name                = "pe-${local.base_name}-${each.key}"
  location            = var.location
  resource_group_name = local.resource_group_name
  subnet_id           = azurerm_subnet.private_endpoints[0].id

  private_service_connection {
    name                           = "psc-${local.base_name}-${each.key}"
    private_connection_resource_id = each.value.resource_id
    subresource_names              = [each.value.subresource]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [for zone in each.value.zones : azurerm_private_dns_zone.this[zone].id]
  }

  tags = local.tags

  depends_on = [
    azurerm_private_dns_zone_virtual_network_link.this,
    azurerm_monitor_private_link_scoped_service.this,
  ]
}
