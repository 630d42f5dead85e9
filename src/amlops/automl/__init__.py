"""The local AutoML: FLAML standing in for Azure's (``python -m amlops.automl``)."""
