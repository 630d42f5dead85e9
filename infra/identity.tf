# The compute cluster runs every pipeline step as this identity. deploy.py reads its
# client id (outputs.tf) for datastore and environment settings.
resource "azurerm_user_assigned_identity" "compute" {
  name                = "id-${local.base_name}-compute"
  location            = var.location
  resource_group_name = local.resource_group_name
  tags                = local.tags
}

locals {
  # The workspace's system-assigned identity gets no grants here: the Azure ML resource
  # provider assigns it the roles it needs on the linked storage account, key vault and
  # registry when it creates the workspace (including Storage Blob Data Contributor for
  # the identity-based system datastores). Declaring the same assignment again fails
  # with RoleAssignmentExists.
  #
  # One row per grant. Scopes are single resources (or single containers), never the
  # resource group or subscription; roles are the narrowest built-in ones that work.
  role_assignments = merge(
    {
      # Steps read their inputs from, and write outputs and snapshots to, the
      # training/scoring containers and the workspace's own default blob container,
      # whose name Azure ML generates; hence account scope, data-plane role only.
      compute_storage_blob = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage Blob Data Contributor"
        principal_id = azurerm_user_assigned_identity.compute.principal_id
        kind         = "ServicePrincipal"
      }
      # Nodes pull the environment images the workspace built; pull only.
      compute_acr_pull = {
        scope        = azurerm_container_registry.this.id
        role         = "AcrPull"
        principal_id = azurerm_user_assigned_identity.compute.principal_id
        kind         = "ServicePrincipal"
      }
      # Steps read secrets (run.get_secret); read only, no key or certificate access.
      compute_key_vault_secrets = {
        scope        = azurerm_key_vault.this.id
        role         = "Key Vault Secrets User"
        principal_id = azurerm_user_assigned_identity.compute.principal_id
        kind         = "ServicePrincipal"
      }
    },
    var.deployment_principal_object_id == null ? {} : merge(
      {
        # Register datasets and environments, publish pipelines and endpoints, manage
        # schedules. Cannot create or change compute or workspace settings.
        deployer_workspace = {
          scope        = azurerm_machine_learning_workspace.this.id
          role         = "AzureML Data Scientist"
          principal_id = var.deployment_principal_object_id
          kind         = var.deployment_principal_type
        }
      },
      {
        # Upload dataset files, on the data containers only, not the whole account.
        for key, container in azurerm_storage_container.data : "deployer_blob_${key}" => {
          scope        = container.resource_manager_id
          role         = "Storage Blob Data Contributor"
          principal_id = var.deployment_principal_object_id
          kind         = var.deployment_principal_type
        }
      },
    ),
  )
}

resource "azurerm_role_assignment" "this" {
  for_each = local.role_assignments

  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = each.value.principal_id
  # Stating the type (managed identities are service principals) skips the Entra ID
  # lookup that fails while a brand-new identity is still replicating.
  principal_type = each.value.kind
  description    = "amlops: ${each.key}"
}
