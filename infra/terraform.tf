terraform {
  # 1.2+: `nullable`, `precondition` and `replace_triggered_by`. Every validation rule
  # reads only its own variable, so no newer language feature is needed.
  required_version = ">= 1.2, < 2.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 5.10 is the newest azurerm whose schema this repo can check offline (the
      # cdktn-provider-azurerm 18.9.0 jsii assembly, tests/infra/azurerm_schema.json).
      # The workspace's storage_account_access_type (ml.tf) needs >= 4.77 anyway; a
      # constraint wider than the checked line would accept arguments nobody checked.
      version = "~> 5.10"
    }
    # time_sleep only: waits for role assignments to propagate before the cluster and the
    # datastores use them (identity.tf). Arguments checked against cdktn-provider-time
    # 14.0.2 (time 0.14.2): create_duration, destroy_duration, triggers.
    time = {
      source  = "hashicorp/time"
      version = "~> 0.14"
    }
  }

  # Partial configuration: the state location differs per environment and is given at
  # init time, `terraform init -input=false -backend-config=backend.dev.hcl` (see
  # backend.example.hcl). A bare `terraform init` would prompt for each setting.
  backend "azurerm" {}
}
