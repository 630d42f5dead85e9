# Copy to backend.<env>.hcl and fill in, then:
#   terraform init -backend-config=backend.<env>.hcl
# One state file per environment (key); the storage account is created once by the
# bootstrap commands in README.md. Entra ID auth, no storage account keys.
resource_group_name  = "rg-amlops-tfstate"
storage_account_name = "stamlopstfstate"
container_name       = "tfstate"
key                  = "amlops-dev.tfstate"
use_azuread_auth     = true
