provider "azurerm" {
  # azurerm 4+ needs a subscription: this variable, or ARM_SUBSCRIPTION_ID when it is null
  # (what CI sets). Without either, plan stops with "subscription ID could not be determined".
  subscription_id = var.subscription_id

  # Shared keys are disabled on the storage accounts, so the provider talks to storage
  # with Entra ID tokens only.
  storage_use_azuread = true

  features {
    machine_learning {
      # A soft-deleted workspace keeps its name reserved for 14 days and blocks
      # re-creating the same name after `terraform destroy`. Data lives in the storage
      # account, not in the workspace, so purging loses only run history metadata.
      purge_soft_deleted_workspace_on_destroy = true
    }

    key_vault {
      # Purge protection is on (keyvault.tf): a purge would fail, and the vault must
      # stay recoverable for its retention period anyway. Re-applying after a destroy
      # recovers the soft-deleted vault of the same name instead of failing on it.
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }

    resource_group {
      # Never delete a resource group that still holds resources this module does not
      # know about (Azure ML creates some itself, e.g. in a managed resource group).
      prevent_deletion_if_contains_resources = true
    }

    application_insights {
      # Otherwise Azure creates a "Failure Anomalies" smart detector rule next to the
      # component that Terraform does not know about, and (with the resource group
      # setting above) `terraform destroy` stops on it.
      disable_generated_rule = true
    }

    storage {
      # Every storage setting here is managed through ARM. In private mode the runner
      # cannot reach the data plane at all, so the provider must not try to.
      data_plane_available = false
    }
  }
}
