# Holds the environment images Azure ML builds for the pipeline steps.
resource "azurerm_container_registry" "this" {
  #checkov:skip=CKV_AZURE_139:Public mode only (network_mode = "public"): GitHub-hosted runners and the workspace's image builds reach the registry over the internet, with Entra ID tokens only (admin user and anonymous pull are off). Private mode turns public access off.
  #checkov:skip=CKV_AZURE_165:Geo-replication doubles the registry cost; the images are rebuilt from the conda specs in pipelines/environments if a region is lost.
  #checkov:skip=CKV_AZURE_166:Quarantine holds every pushed image until a scanner releases it; no scanner is set up, so Azure ML image builds would never become pullable.
  #checkov:skip=CKV_AZURE_164:Content trust (Docker Notary v1) is deprecated by Azure and not supported by Azure ML image builds.
  #checkov:skip=CKV_AZURE_237:Dedicated data endpoints only matter with firewall rules on the public endpoint; private mode uses a private endpoint instead.
  #checkov:skip=CKV_AZURE_233:Zone redundancy is on whenever the SKU supports it (Premium, the default and prod); dev's Standard SKU cannot have it. Checkov cannot evaluate that conditional.
  name                          = "cr${local.unique_name}"
  location                      = var.location
  resource_group_name           = local.resource_group_name
  sku                           = var.container_registry_sku
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  public_network_access_enabled = local.private ? false : true
  zone_redundancy_enabled       = var.container_registry_sku == "Premium"
  # Untagged manifests (superseded image builds) are deleted after a week; Premium only.
  retention_policy_in_days = var.container_registry_sku == "Premium" ? 7 : null
  tags                     = local.tags

  lifecycle {
    precondition {
      condition     = !local.private || var.container_registry_sku == "Premium"
      error_message = "network_mode = \"private\" needs container_registry_sku = \"Premium\": only Premium registries support private endpoints."
    }
  }
}
