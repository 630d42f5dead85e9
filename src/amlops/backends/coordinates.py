"""Which workspace to talk to: Terraform outputs, overridden by config, overridden by env vars."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amlops.backends.terraform_outputs import TerraformNotFound, TerraformSource, read_outputs
from amlops.config import Config
from amlops.errors import ConfigError

log = logging.getLogger("amlops.coordinates")

# Environment variables win over everything: CI points one checkout at another workspace.
ENV_OVERRIDES = {
    "subscription_id": "AMLOPS_SUBSCRIPTION_ID",
    "resource_group": "AMLOPS_RESOURCE_GROUP",
    "workspace_name": "AMLOPS_WORKSPACE_NAME",
}


@dataclass(frozen=True)
class Coordinates:
    subscription_id: str
    resource_group: str
    workspace_name: str
    compute: str
    location: str | None = None
    # Logical datastore names (training, scoring, trigger) -> names in the workspace.
    datastore_names: Mapping[str, str] = field(default_factory=dict)
    managed_identity_client_id: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)  # key -> where its value came from

    def datastore(self, name: str) -> str:
        """A datastore name from config, mapped through Terraform's ``datastore_names``."""
        return self.datastore_names.get(name, name)


def resolve(
    config: Config, outputs: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Coordinates:
    """Merge the three sources; ConfigError naming every place a missing value could come from."""
    environ = os.environ if environ is None else environ
    ws = config.workspace
    layers: dict[str, list[tuple[str, Any]]] = {
        "subscription_id": [
            ("terraform output subscription_id", outputs.get("subscription_id")),
            (f"{config.file}: workspace.subscription_id", ws.subscription_id),
        ],
        "resource_group": [
            ("terraform output resource_group_name", outputs.get("resource_group_name")),
            (f"{config.file}: workspace.resource_group", ws.resource_group),
        ],
        "workspace_name": [
            ("terraform output workspace_name", outputs.get("workspace_name")),
            (f"{config.file}: workspace.name", ws.name),
        ],
        "location": [
            ("terraform output location", outputs.get("location")),
            (f"{config.file}: workspace.location", ws.location),
        ],
    }
    for key, var in ENV_OVERRIDES.items():
        layers[key].append((f"environment variable {var}", environ.get(var)))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, candidates in layers.items():
        for source, value in candidates:
            if value not in (None, ""):
                values[key], sources[key] = value, source
    for key in ("subscription_id", "resource_group", "workspace_name"):
        if key not in values:
            config_key = "name" if key == "workspace_name" else key
            raise ConfigError(
                f"{config.file}: workspace.{config_key} is not set and no Terraform output or "
                f"{ENV_OVERRIDES[key]} provides it (run terraform apply in infra/, pass "
                "--tf-dir/--tf-state, or set it)"
            )
    datastores = outputs.get("datastore_names") or {}
    if not isinstance(datastores, Mapping):
        raise ConfigError("terraform output datastore_names must be a map of logical name -> name")
    return Coordinates(
        subscription_id=str(values["subscription_id"]),
        resource_group=str(values["resource_group"]),
        workspace_name=str(values["workspace_name"]),
        location=values.get("location"),
        compute=config.compute,
        datastore_names={str(k): str(v) for k, v in datastores.items()},
        managed_identity_client_id=outputs.get("managed_identity_client_id") or None,
        sources=sources,
    )


def terraform_option(options: Mapping[str, Any] | None) -> TerraformSource | None:
    """The Terraform that --tf-dir / --tf-state name, or None when neither was given."""
    opts = options or {}
    if opts.get("tf_dir") or opts.get("tf_state"):
        return TerraformSource(dir=opts.get("tf_dir"), state=opts.get("tf_state"))
    return None


def terraform_outputs(config: Config, explicit: TerraformSource | None) -> Mapping[str, Any]:
    """Terraform's outputs: those of ``explicit`` (--tf-dir/--tf-state), which must be
    readable, else of config's ``terraform_dir`` when Terraform is there, else none."""
    try:
        return read_outputs(explicit or TerraformSource(dir=config.workspace.terraform_dir))
    except TerraformNotFound as exc:
        if explicit is not None:
            raise
        log.info("%s; coordinates from config and environment", exc)
        return {}
