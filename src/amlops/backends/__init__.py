"""Backends turn a spec into assets, runs, endpoints and schedules in one kind of workspace.

Imports are lazy: the Azure SDK takes seconds to import and the local path never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amlops.config import Config


def open_backend(config: Config, *, plan: bool, **options: Any):
    """The backend ``config.workspace.backend`` names, connected and ready for the stages."""
    if config.workspace.backend == "local":
        from amlops.backends.local.backend import LocalBackend

        return LocalBackend(config.workspace.path, plan=plan)
    from amlops.backends.azureml_v1 import AzureMLv1Backend

    return AzureMLv1Backend.connect(config, plan=plan, **options)
