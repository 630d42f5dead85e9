resource "azurerm_machine_learning_workspace" "this" {
  #checkov:skip=CKV_AZURE_144:Public mode only (network_mode = "public"): deploy.py runs on GitHub-hosted runners, which reach the workspace over the internet with Entra ID tokens. Private mode turns public access off and adds a private endpoint.
  name                    = "mlw-${local.base_name}"
  friendly_name           = "amlops ${var.environment}"
  description             = "Azure ML workspace for the amlops pipelines (${var.environment})."
  location                = var.location
  resource_group_name     = local.resource_group_name
  application_insights_id = azurerm_application_insights.this.id
  key_vault_id            = azurerm_key_vault.this.id
  storage_account_id      = azurerm_storage_account.this.id
  container_registry_id   = azurerm_container_registry.this.id
  sku_name                = "Basic"

  public_network_access_enabled = local.private ? false : true
  # A registry behind a private endpoint cannot be used by ACR build tasks, so image
  # builds run on the cluster instead (it exists in the VNet and can reach it).
  image_build_compute_name = local.private ? var.compute_cluster_name : null

  # Shared keys are off on the storage account: the system datastores (workspaceblobstore,
  # workspacefilestore) must use identities from the start. azurerm (>= 4.77) sends this on
  # create and on every update, so it is set here, once, never flipped by another tool.
  storage_account_access_type = "Identity"

  # The workspace's system identity is the one Azure ML uses for the system datastores
  # and the studio; its storage roles are declared in identity.tf.
  identity {
    type = "SystemAssigned"
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = local.private || !contains(var.protected_environments, var.environment)
      error_message = "Environment ${var.environment} is in protected_environments and must use network_mode = \"private\" (is the -var-file missing?). To run it in public mode on purpose, remove it from protected_environments."
    }
  }
}

locals {
  # AML datastore names: letters, digits and underscores.
  datastores = {
    training = { name = "training_data", container = "training" }
    scoring  = { name = "scoring_data", container = "scoring" }
  }
}

# Credential-less datastores: no account key or SAS is stored. Jobs read and write as
# the compute identity (identity.tf), the studio as the workspace identity.
resource "azurerm_machine_learning_datastore_blobstorage" "data" {
  for_each = local.datastores

  name                       = each.value.name
  workspace_id               = azurerm_machine_learning_workspace.this.id
  storage_container_id       = azurerm_storage_container.data[each.value.container].id
  service_data_auth_identity = "WorkspaceSystemAssignedIdentity"
  description                = "${each.key} data (${local.data_containers[each.value.container]}), identity-based access."

  # The workspace identity's storage roles must be in effect when Azure ML checks the
  # datastore.
  depends_on = [time_sleep.role_propagation]
}

# Opt-in trigger datastore, account-key based; see enable_datastore_change_trigger.
resource "azurerm_machine_learning_datastore_blobstorage" "trigger" {
  count = var.enable_datastore_change_trigger ? 1 : 0

  name                 = "trigger_data"
  workspace_id         = azurerm_machine_learning_workspace.this.id
  storage_container_id = azurerm_storage_container.trigger[0].id
  account_key          = azurerm_storage_account.trigger[0].primary_access_key
  description          = "Datastore-change schedule trigger (account key, opt-in)."
}

resource "azurerm_machine_learning_compute_cluster" "this" {
  name                          = var.compute_cluster_name
  location                      = var.location
  machine_learning_workspace_id = azurerm_machine_learning_workspace.this.id
  vm_size                       = var.compute_vm_size
  vm_priority                   = var.compute_vm_priority

  # No keys and no SSH into the nodes: jobs authenticate with Entra ID and the
  # cluster's managed identity.
  local_auth_enabled        = false
  ssh_public_access_enabled = false
  # Private mode: nodes live in the compute subnet without public IPs and reach Azure
  # through the NAT gateway and the private endpoints (network.tf).
  node_public_ip_enabled = local.private ? false : true
  subnet_resource_id     = local.private ? azurerm_subnet.compute[0].id : null

  scale_settings {
    # Scale to zero: an idle cluster costs nothing.
    min_node_count                       = 0
    max_node_count                       = var.compute_max_nodes
    scale_down_nodes_after_idle_duration = var.compute_idle_time_before_scale_down
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.compute.id]
  }

  tags = local.tags

  # The first job must be able to pull images and read data as soon as the cluster
  # exists (roles propagated, not just created); private mode also needs the outbound
  # path and DNS in place.
  depends_on = [
    time_sleep.role_propagation,
    azurerm_subnet_nat_gateway_association.compute,
    azurerm_private_endpoint.this,
  ]
}
