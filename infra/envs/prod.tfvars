# Production: private network mode (deploy from a self-hosted runner inside the VNet),
# geo-zone-redundant storage, dedicated nodes.
name_prefix  = "amlops"
environment  = "prod"
location     = "westeurope"
network_mode = "private"

vnet_address_space                     = ["10.42.0.0/16"]
compute_subnet_address_prefix          = "10.42.0.0/24"
private_endpoint_subnet_address_prefix = "10.42.1.0/24"

storage_replication_type             = "GZRS"
blob_soft_delete_retention_days      = 30
log_analytics_retention_days         = 90
key_vault_sku                        = "standard"
key_vault_soft_delete_retention_days = 90
container_registry_sku               = "Premium"

compute_cluster_name                = "cpu-cluster"
compute_vm_size                     = "Standard_DS3_v2"
compute_vm_priority                 = "Dedicated"
compute_max_nodes                   = 8
compute_idle_time_before_scale_down = "PT30M"

enable_datastore_change_trigger = false

# Who runs scripts/deploy.py gets its roles: by default whoever runs Terraform; CI passes the
# deploy identity's object id (AZURE_DEPLOY_PRINCIPAL_ID -> TF_VAR_deployment_principal_object_id).
# deployment_principal_object_id = "00000000-0000-0000-0000-000000000000"

# The network of the self-hosted runner (hub or peered) must resolve the private endpoints:
# private_dns_zone_link_vnet_ids = {
#   hub = "/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>"
# }

tags = {
  cost-center = "ml-platform"
  criticality = "high"
}
