"""Azure ML SDK v1 backend (azureml-core / azureml-pipeline-*). Imported only when chosen."""
