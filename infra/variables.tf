# Every validation refers only to its own variable so that each rule can be checked in
# isolation (tests/infra/test_validation.py); cross-variable rules are `precondition`s
# on the resources they protect.

variable "name_prefix" {
  type        = string
  description = "Short project prefix used in every resource name (2-8 lowercase letters or digits, starting with a letter)."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.name_prefix))
    error_message = "The value of name_prefix must be 2-8 lowercase letters or digits and start with a letter (it ends up in storage account names)."
  }
}

variable "environment" {
  type        = string
  description = "Environment short name, e.g. dev or prod (2-5 lowercase letters or digits). Part of every resource name."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,4}$", var.environment))
    error_message = "The value of environment must be 2-5 lowercase letters or digits and start with a letter, e.g. dev, test, prod."
  }
}

variable "location" {
  type        = string
  description = "Azure region for every resource, as a programmatic name such as westeurope."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,30}$", var.location))
    error_message = "The value of location must be a region's programmatic name: lowercase letters and digits, no spaces (westeurope, not \"West Europe\")."
  }
}

variable "existing_resource_group_name" {
  type        = string
  description = "Name of an existing resource group to deploy into. Null (the default) creates rg-<prefix>-<environment>."
  default     = null

  validation {
    condition     = var.existing_resource_group_name == null || can(regex("^[-\\w.()]{0,89}[-\\w()]$", var.existing_resource_group_name))
    error_message = "The value of existing_resource_group_name must be 1-90 letters, digits, underscores, hyphens, periods or parentheses, and must not end with a period."
  }
}

variable "name_suffix" {
  type        = string
  description = "Suffix that makes the globally unique names (storage account, key vault, registry) unique. Null derives a stable 6-character suffix from the subscription, prefix and environment."
  default     = null

  validation {
    condition     = var.name_suffix == null || can(regex("^[a-z0-9]{1,6}$", var.name_suffix))
    error_message = "The value of name_suffix must be 1-6 lowercase letters or digits."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource that supports them."
  default     = {}
  nullable    = false
}

variable "network_mode" {
  type        = string
  description = "\"private\": public network access off everywhere, private endpoints and DNS for workspace, storage, key vault and registry, compute without public IPs in a subnet; deployments need a runner inside the network. \"public\": reachable from GitHub-hosted runners, access by Entra ID only."
  default     = "private"
  nullable    = false

  validation {
    condition     = contains(["public", "private"], var.network_mode)
    error_message = "The value of network_mode must be \"public\" or \"private\"."
  }
}

variable "vnet_address_space" {
  type        = list(string)
  description = "Address space of the virtual network created in private mode (ignored in public mode)."
  default     = ["10.42.0.0/16"]
  nullable    = false

  validation {
    condition     = length(var.vnet_address_space) > 0 && alltrue([for cidr in var.vnet_address_space : can(regex("^[0-9.]+/[0-9]+$", cidr)) && can(cidrhost(cidr, 0))])
    error_message = "The value of vnet_address_space must be a non-empty list of IPv4 CIDR blocks, e.g. [\"10.42.0.0/16\"]."
  }
}

variable "compute_subnet_address_prefix" {
  type        = string
  description = "CIDR of the subnet that holds the compute cluster nodes in private mode; a /24 fits 250 nodes."
  default     = "10.42.0.0/24"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9.]+/[0-9]+$", var.compute_subnet_address_prefix)) && can(cidrhost(var.compute_subnet_address_prefix, 0))
    error_message = "The value of compute_subnet_address_prefix must be an IPv4 CIDR block, e.g. 10.42.0.0/24."
  }
}

variable "private_endpoint_subnet_address_prefix" {
  type        = string
  description = "CIDR of the subnet that holds the private endpoints in private mode."
  default     = "10.42.1.0/24"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9.]+/[0-9]+$", var.private_endpoint_subnet_address_prefix)) && can(cidrhost(var.private_endpoint_subnet_address_prefix, 0))
    error_message = "The value of private_endpoint_subnet_address_prefix must be an IPv4 CIDR block, e.g. 10.42.1.0/24."
  }
}

variable "log_analytics_retention_days" {
  type        = number
  description = "Retention of the Log Analytics workspace (and so of Application Insights) in days, 30-730."
  default     = 30
  nullable    = false

  validation {
    condition     = var.log_analytics_retention_days >= 30 && var.log_analytics_retention_days <= 730 && floor(var.log_analytics_retention_days) == var.log_analytics_retention_days
    error_message = "The value of log_analytics_retention_days must be a whole number from 30 to 730."
  }
}

variable "storage_replication_type" {
  type        = string
  description = "Replication of the storage account: LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  default     = "ZRS"
  nullable    = false

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "The value of storage_replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "blob_soft_delete_retention_days" {
  type        = number
  description = "Days a deleted or overwritten blob (and a deleted container) can be restored, 1-365."
  default     = 14
  nullable    = false

  validation {
    condition     = var.blob_soft_delete_retention_days >= 1 && var.blob_soft_delete_retention_days <= 365 && floor(var.blob_soft_delete_retention_days) == var.blob_soft_delete_retention_days
    error_message = "The value of blob_soft_delete_retention_days must be a whole number from 1 to 365."
  }
}

variable "key_vault_sku" {
  type        = string
  description = "Key Vault SKU: standard or premium (HSM-backed keys)."
  default     = "standard"
  nullable    = false

  validation {
    condition     = contains(["standard", "premium"], var.key_vault_sku)
    error_message = "The value of key_vault_sku must be \"standard\" or \"premium\"."
  }
}

variable "key_vault_soft_delete_retention_days" {
  type        = number
  description = "Days a deleted Key Vault stays recoverable (and its name reserved), 7-90."
  default     = 90
  nullable    = false

  validation {
    condition     = var.key_vault_soft_delete_retention_days >= 7 && var.key_vault_soft_delete_retention_days <= 90 && floor(var.key_vault_soft_delete_retention_days) == var.key_vault_soft_delete_retention_days
    error_message = "The value of key_vault_soft_delete_retention_days must be a whole number from 7 to 90."
  }
}

variable "container_registry_sku" {
  type        = string
  description = "Container Registry SKU: Basic, Standard or Premium. Private mode needs Premium (private endpoints); so does the untagged-manifest retention policy."
  default     = "Premium"
  nullable    = false

  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.container_registry_sku)
    error_message = "The value of container_registry_sku must be Basic, Standard or Premium."
  }
}

variable "compute_cluster_name" {
  type        = string
  description = "Name of the AmlCompute cluster the pipelines run on (3-32 letters, digits or hyphens, starting with a letter, the rule azurerm's ComputeClusterName validator applies)."
  default     = "cpu-cluster"
  nullable    = false

  validation {
    # The provider's own regex (internal/services/machinelearning/validate/compute_cluster_name.go).
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$", var.compute_cluster_name))
    error_message = "The value of compute_cluster_name must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "compute_vm_size" {
  type        = string
  description = "VM size of the cluster nodes, e.g. Standard_DS3_v2."
  default     = "Standard_DS3_v2"
  nullable    = false

  validation {
    condition     = can(regex("^Standard_[A-Za-z0-9_]+$", var.compute_vm_size))
    error_message = "The value of compute_vm_size must be an Azure VM size name such as Standard_DS3_v2."
  }
}

variable "compute_vm_priority" {
  type        = string
  description = "Dedicated, or LowPriority (cheaper, nodes can be preempted; AML retries preempted jobs)."
  default     = "Dedicated"
  nullable    = false

  validation {
    condition     = contains(["Dedicated", "LowPriority"], var.compute_vm_priority)
    error_message = "The value of compute_vm_priority must be \"Dedicated\" or \"LowPriority\"."
  }
}

variable "compute_max_nodes" {
  type        = number
  description = "Upper bound of the cluster's autoscale, 1-100 nodes. The minimum is always 0 so an idle cluster costs nothing."
  default     = 4
  nullable    = false

  validation {
    condition     = var.compute_max_nodes >= 1 && var.compute_max_nodes <= 100 && floor(var.compute_max_nodes) == var.compute_max_nodes
    error_message = "The value of compute_max_nodes must be a whole number from 1 to 100."
  }
}

variable "compute_idle_time_before_scale_down" {
  type        = string
  description = "How long an idle node is kept before the cluster scales it down, as an ISO 8601 duration such as PT15M or PT1H30M."
  default     = "PT15M"
  nullable    = false

  validation {
    # P[nD][T[nH][nM][nS]], ending in a component (so neither "P" nor "PT" nor "P1DT").
    condition     = can(regex("^P([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?$", var.compute_idle_time_before_scale_down)) && can(regex("[0-9][DHMS]$", var.compute_idle_time_before_scale_down))
    error_message = "The value of compute_idle_time_before_scale_down must be an ISO 8601 duration such as PT15M, PT2H or P1DT30M."
  }
}

variable "enable_datastore_change_trigger" {
  type        = bool
  description = <<-EOT
    Opt-in, off by default. Creates a separate storage account with shared keys ON and an
    AzureBlob datastore on it that uses the account key, because Azure ML v1
    datastore-change schedules (Schedule.create with a datastore) accept only such a
    datastore. Trade-off: the account key is stored in the workspace's Key Vault and in the
    Terraform state, and anyone holding it can read and write that account, bypassing
    Entra ID and role assignments. Keep only trigger files there, never data. Public
    network mode only: these schedules do not work with VNet-isolated workspaces. Prefer
    time-based schedules.
  EOT
  default     = false
  nullable    = false
}

variable "subscription_id" {
  type        = string
  description = "Subscription to deploy into. Null (the default) uses ARM_SUBSCRIPTION_ID from the environment, as CI does; azurerm 4+ has no other fallback, not even `az account show`."
  default     = null

  validation {
    condition     = var.subscription_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "The value of subscription_id must be a subscription id (a GUID) or null (then ARM_SUBSCRIPTION_ID is used)."
  }
}

variable "protected_environments" {
  type        = list(string)
  description = "Environments that must use network_mode = \"private\": planning one of them in public mode stops with an error, so a tfvars edit or a missing -var-file cannot expose production. Remove an entry only on purpose."
  default     = ["prod"]
  nullable    = false

  validation {
    condition     = alltrue([for name in var.protected_environments : can(regex("^[a-z][a-z0-9]{1,4}$", name))])
    error_message = "The value of protected_environments must be a list of environment names (2-5 lowercase letters or digits, starting with a letter)."
  }
}

variable "private_dns_zone_link_vnet_ids" {
  type        = map(string)
  description = "Private mode: extra virtual networks (key: a short name, value: the VNet's resource id) to link every private DNS zone to, e.g. the hub or the peered network a self-hosted runner lives in. Without a link there, the runner resolves the public names and deploy.py cannot reach the private workspace."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for key, id in var.private_dns_zone_link_vnet_ids :
      can(regex("^[a-z0-9-]{1,20}$", key)) && can(regex("(?i)^/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/Microsoft\\.Network/virtualNetworks/[^/]+$", id))
    ])
    error_message = "The value of private_dns_zone_link_vnet_ids must map short names (1-20 lowercase letters, digits or hyphens) to virtual network resource ids (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<name>)."
  }
}

variable "monitor_private_link_scope_enabled" {
  type        = bool
  description = "Private mode: put Log Analytics and Application Insights behind an Azure Monitor Private Link Scope (private endpoint and DNS in the VNet, public ingestion and query off), as the Azure Verified Module's private example does. Ignored in public mode. Note: a VNet linked to a private link scope reaches only the Azure Monitor resources in that scope."
  default     = true
  nullable    = false
}

variable "deployment_principal_object_id" {
  type        = string
  description = "Object id of the principal that runs scripts/deploy.py (in CI the deploy identity's service principal, AZURE_DEPLOY_PRINCIPAL_ID). Null grants the deploy roles to whoever runs Terraform, which is right for one person doing both locally. It gets AzureML Data Scientist on the workspace and blob and file data roles on the storage account."
  default     = null

  validation {
    condition     = var.deployment_principal_object_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.deployment_principal_object_id))
    error_message = "The value of deployment_principal_object_id must be an object id (a GUID) or null."
  }
}

variable "deployment_principal_type" {
  type        = string
  description = "Kind of the deployment principal: ServicePrincipal (CI), User or Group. Ignored when deployment_principal_object_id is null: the grants then go to whoever runs Terraform, whose kind Terraform cannot tell, so none is stated."
  default     = "ServicePrincipal"
  nullable    = false

  validation {
    condition     = contains(["ServicePrincipal", "User", "Group"], var.deployment_principal_type)
    error_message = "The value of deployment_principal_type must be ServicePrincipal, User or Group."
  }
}

variable "manage_workspace_identity_storage_roles" {
  type        = bool
  description = "Assign the workspace's system identity its roles on the storage account (Storage Blob Data Contributor, Storage File Data Privileged Contributor) in Terraform. Azure ML documents granting them itself only for workspaces created in identity mode; declaring them makes them certain and visible. Set false only if apply stops with RoleAssignmentExists because Azure ML already made the same assignment."
  default     = true
  nullable    = false
}

variable "role_propagation_wait" {
  type        = string
  description = "How long to wait after creating role assignments before the cluster and datastores that use them (Azure RBAC takes minutes to propagate), as a duration such as 60s or 2m."
  default     = "90s"
  nullable    = false

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.role_propagation_wait)) && var.role_propagation_wait != ""
    error_message = "The value of role_propagation_wait must be a duration such as 30s, 2m or 1m30s."
  }
}
