terraform {
  # 1.2+: `nullable`, `precondition` and `replace_triggered_by`. Every validation rule
  # reads only its own variable, so no newer language feature is needed.
  required_version = ">= 1.2, < 2.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55"
    }
    # Only for the one workspace property azurerm does not expose yet
    # (systemDatastoresAuthMode, see ml.tf).
    azapi = {
      source  = "azure/azapi"
      version = "~> 2.0"
    }
  }

  # Partial configuration: the state location differs per environment and is given at
  # init time, `terraform init -backend-config=backend.dev.hcl` (see backend.example.hcl).
  backend "azurerm" {}
}
