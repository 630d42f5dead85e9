# The workspace's Key Vault. Access is by Azure RBAC only (identity.tf), never by
# access policies.
resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_109:Public mode only: compute nodes outside a VNet and the workspace reach the vault from Azure public IPs, so the firewall allows by default; RBAC still decides every access. Private mode sets default_action = Deny.
  #checkov:skip=CKV_AZURE_189:Public mode only (network_mode = "public"); private mode turns public network access off and adds a private endpoint.
  #checkov:skip=CKV2_AZURE_32:Public mode has no private endpoints by design; private mode creates the vault's private endpoint (network.tf).
  name                          = "kv-${local.base_name}-${local.suffix}"
  location                      = var.location
  resource_group_name           = local.resource_group_name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = var.key_vault_sku
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = var.key_vault_soft_delete_retention_days
  public_network_access_enabled = local.private ? false : true

  network_acls {
    default_action = local.private ? "Deny" : "Allow"
    bypass         = "AzureServices"
  }

  tags = local.tags
}
