"""Azure ML SDK v1 backend (azureml-core / azureml-pipeline-*). Imported only when used."""

from amlops.backends.azureml_v1.backend import AzureMLv1Backend
from amlops.backends.azureml_v1.terraform_outputs import TerraformSource

__all__ = ["AzureMLv1Backend", "TerraformSource"]
