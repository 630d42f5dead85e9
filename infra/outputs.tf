# What scripts/deploy.py reads (`terraform output -json`). Names and ids only; no keys,
# no connection strings.

output "subscription_id" {
  description = "Subscription the workspace lives in."
  value       = data.azurerm_client_config.current.subscription_id
}

output "tenant_id" {
  description = "Entra ID tenant of the subscription."
  value       = data.azurerm_client_config.current.tenant_id
}

output "resource_group_name" {
  description = "Resource group that holds the workspace and its dependencies."
  value       = local.resource_group_name
}

output "location" {
  description = "Azure region of every resource."
  value       = var.location
}

output "network_mode" {
  description = "\"public\" or \"private\": whether deploy.py must run inside the VNet."
  value       = var.network_mode
}

output "workspace_name" {
  description = "Azure ML workspace name (Workspace.get)."
  value       = azurerm_machine_learning_workspace.this.name
}

output "workspace_id" {
  description = "Azure ML workspace resource id."
  value       = azurerm_machine_learning_workspace.this.id
}

output "compute_cluster_name" {
  description = "AmlCompute cluster the pipeline steps run on."
  value       = azurerm_machine_learning_compute_cluster.this.name
}

output "compute_cluster_max_nodes" {
  description = "Autoscale upper bound of the cluster (ParallelRunStep node_count must not exceed it)."
  value       = var.compute_max_nodes
}

output "datastore_names" {
  description = "Azure ML datastore names by role: training, scoring, and trigger only when enable_datastore_change_trigger is on."
  value = merge(
    { for key, datastore in azurerm_machine_learning_datastore_blobstorage.data : key => datastore.name },
    var.enable_datastore_change_trigger ? { trigger = azurerm_machine_learning_datastore_blobstorage.trigger[0].name } : {},
  )
}

output "storage_account_name" {
  description = "Storage account that holds the training and scoring containers (Entra ID access only)."
  value       = azurerm_storage_account.this.name
}

output "storage_containers" {
  description = "Blob container names by role: training, scoring (and trigger, on its own account, when the opt-in is on)."
  value = merge(
    { for key, container in azurerm_storage_container.data : key => container.name },
    var.enable_datastore_change_trigger ? { trigger = azurerm_storage_container.trigger[0].name } : {},
  )
}

output "trigger_storage_account_name" {
  description = "Storage account of the opt-in trigger datastore, or null when it is off."
  value       = var.enable_datastore_change_trigger ? azurerm_storage_account.trigger[0].name : null
}

output "key_vault_name" {
  description = "The workspace's Key Vault (RBAC)."
  value       = azurerm_key_vault.this.name
}

output "container_registry_name" {
  description = "The workspace's Container Registry (environment images)."
  value       = azurerm_container_registry.this.name
}

output "managed_identity_client_id" {
  description = "Client id of the compute cluster's user-assigned identity."
  value       = azurerm_user_assigned_identity.compute.client_id
}

output "managed_identity_id" {
  description = "Resource id of the compute cluster's user-assigned identity."
  value       = azurerm_user_assigned_identity.compute.id
}

output "managed_identity_principal_id" {
  description = "Object (principal) id of the compute cluster's user-assigned identity, for extra role assignments."
  value       = azurerm_user_assigned_identity.compute.principal_id
}
