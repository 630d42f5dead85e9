"""Backends turn a spec into assets, runs, endpoints and schedules in one kind of workspace.

Imports are lazy: the Azure SDK takes seconds to import and the local path never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amlops.config import Config


def backend_class(config: Config) -> type:
    """The class of the backend ``config.workspace.backend`` names (its ``stages``, ``name``)."""
    if config.workspace.backend == "local":
        from amlops.backends.local.backend import LocalBackend

        return LocalBackend
    from amlops.backends.azureml_v1 import AzureMLv1Backend

    return AzureMLv1Backend


def open_backend(config: Config, *, plan: bool, **options: Any):
    """The backend ``config.workspace.backend`` names, connected and ready for the stages."""
    cls = backend_class(config)
    if config.workspace.backend == "local":
        return cls(
            config.workspace.path,
            plan=plan,
            service_url=config.workspace.service_url,
            config_file=str(config.file),
        )
    return cls.connect(config, plan=plan, **options)
