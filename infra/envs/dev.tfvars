# Development: public network mode so GitHub-hosted runners can deploy; small cluster of
# preemptible nodes that scale down quickly.
name_prefix  = "amlops"
environment  = "dev"
location     = "westeurope"
network_mode = "public"

storage_replication_type        = "LRS"
blob_soft_delete_retention_days = 7
log_analytics_retention_days    = 30
container_registry_sku          = "Standard"

compute_cluster_name                = "cpu-cluster"
compute_vm_size                     = "Standard_DS3_v2"
compute_vm_priority                 = "LowPriority"
compute_max_nodes                   = 2
compute_idle_time_before_scale_down = "PT10M"

enable_datastore_change_trigger = false

# Who runs scripts/deploy.py gets its roles: by default whoever runs Terraform; CI passes the
# deploy identity's object id (AZURE_DEPLOY_PRINCIPAL_ID -> TF_VAR_deployment_principal_object_id).
# deployment_principal_object_id = "00000000-0000-0000-0000-000000000000"

tags = {
  cost-center = "ml-platform"
}
