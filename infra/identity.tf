# The compute cluster runs every pipeline step as this identity. deploy.py reads its
# client id (outputs.tf) for datastore and environment settings.
resource "azurerm_user_assigned_identity" "compute" {
  name                = "id-${local.base_name}-compute"
  location            = var.location
  resource_group_name = local.resource_group_name
  tags                = local.tags
}

locals {
  # Who runs deploy.py: the given principal, or (null) whoever runs Terraform. Its kind is
  # stated only when given; the Terraform runner could be a user or a service principal.
  deployer_object_id = coalesce(var.deployment_principal_object_id, data.azurerm_client_config.current.object_id)
  deployer_type      = var.deployment_principal_object_id == null ? null : var.deployment_principal_type

  compute_principal   = azurerm_user_assigned_identity.compute.principal_id
  workspace_principal = azurerm_machine_learning_workspace.this.identity[0].principal_id

  # One row per grant. Scopes are single resources, never the resource group or
  # subscription; roles are the narrowest built-in ones that work. The storage roles are
  # at account scope because the workspace's own containers (snapshots, outputs, the
  # ParallelRunStep queues and tables) have names Azure ML generates.
  role_assignments = merge(
    {
      # Steps read inputs from, and write outputs and snapshots to, the data containers
      # and the workspace's default blob container.
      compute_storage_blob = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage Blob Data Contributor"
        principal_id = local.compute_principal
        kind         = "ServicePrincipal"
      }
      # ParallelRunStep keeps its mini-batch queue and progress table in the account;
      # Microsoft's identity-based storage doc requires both roles for it.
      compute_storage_queue = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage Queue Data Contributor"
        principal_id = local.compute_principal
        kind         = "ServicePrincipal"
      }
      compute_storage_table = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage Table Data Contributor"
        principal_id = local.compute_principal
        kind         = "ServicePrincipal"
      }
      # Nodes pull the environment images the workspace built.
      compute_acr_pull = {
        scope        = azurerm_container_registry.this.id
        role         = "AcrPull"
        principal_id = local.compute_principal
        kind         = "ServicePrincipal"
      }
      # Steps read secrets (run.get_secret); read only, no key or certificate access.
      compute_key_vault_secrets = {
        scope        = azurerm_key_vault.this.id
        role         = "Key Vault Secrets User"
        principal_id = local.compute_principal
        kind         = "ServicePrincipal"
      }
      # Register datasets and environments, publish pipelines and endpoints, manage
      # schedules. Cannot create or change compute or workspace settings.
      deployer_workspace = {
        scope        = azurerm_machine_learning_workspace.this.id
        role         = "AzureML Data Scientist"
        principal_id = local.deployer_object_id
        kind         = local.deployer_type
      }
      # Upload dataset files to the data containers and snapshots to the workspace's
      # default container (whose name Azure ML generates, hence account scope); Azure ML's
      # docs ask blob and file data roles at account scope of datastore users.
      deployer_storage_blob = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage Blob Data Contributor"
        principal_id = local.deployer_object_id
        kind         = local.deployer_type
      }
      # workspacefilestore (identity-based) is an Azure Files share: OAuth access to
      # file data needs the "privileged" role; there is no narrower built-in one.
      deployer_storage_file = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage File Data Privileged Contributor"
        principal_id = local.deployer_object_id
        kind         = local.deployer_type
      }
    },
    var.manage_workspace_identity_storage_roles ? {
      # The workspace identity serves the studio (data preview, uploads) and the system
      # datastores in identity mode. Azure ML grants these itself only when it creates a
      # workspace in identity mode; declaring them keeps them true after any change.
      workspace_storage_blob = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage Blob Data Contributor"
        principal_id = local.workspace_principal
        kind         = "ServicePrincipal"
      }
      workspace_storage_file = {
        scope        = azurerm_storage_account.this.id
        role         = "Storage File Data Privileged Contributor"
        principal_id = local.workspace_principal
        kind         = "ServicePrincipal"
      }
    } : {},
    local.private ? {
      # Private mode builds images on the cluster (ml.tf: image_build_compute_name), so
      # the compute identity pushes the built image; AcrPush is the built-in role for
      # push (and pull), nothing more.
      compute_acr_push = {
        scope        = azurerm_container_registry.this.id
        role         = "AcrPush"
        principal_id = local.compute_principal
        kind         = "ServicePrincipal"
      }
    } : {},
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

# Azure RBAC is eventually consistent: a job or datastore check right after the grant can
# still get 403. Everything that uses these roles depends on this wait, not on the
# assignments directly. A new or changed grant waits again (triggers).
resource "time_sleep" "role_propagation" {
  create_duration = var.role_propagation_wait

  triggers = {
    assignments = join(",", sort([for key, assignment in azurerm_role_assignment.this : assignment.id]))
  }
}
