"""Backends turn a spec into assets, runs, endpoints and schedules in one kind of workspace.

``BACKENDS`` is the table from ``workspace.backend`` to the module that implements it and the
command-line options it takes. A backend's module is imported only when it is chosen: the
Azure SDKs take seconds to import and the local path never needs them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amlops.backends.base import Backend
    from amlops.config import Config
    from amlops.spec import Pipeline


@dataclass(frozen=True)
class BackendOption:
    """A deploy option only one backend understands, e.g. where Terraform's outputs are."""

    flag: str
    dest: str
    help: str
    type: Callable[[str], Any] = str


@dataclass(frozen=True)
class BackendEntry:
    name: str
    module: str
    attr: str
    options: tuple[BackendOption, ...] = ()
    # "module:function" writing, offline, what a deploy would submit: (config, pipelines,
    # folder) -> files written. None: nothing is submitted anywhere (the local workspace).
    exporter: str | None = None

    def load(self) -> type[Backend]:
        return getattr(importlib.import_module(self.module), self.attr)

    def export(self, config: Config, pipelines: Sequence[Pipeline], out_dir: Path) -> list[Path]:
        from amlops.errors import ConfigError

        if self.exporter is None:
            exporters = ", ".join(n for n, e in BACKENDS.items() if e.exporter)
            raise ConfigError(
                f"--backend {self.name}: nothing to export, it submits nowhere "
                f"(export for: {exporters})"
            )
        module, _, function = self.exporter.partition(":")
        return getattr(importlib.import_module(module), function)(config, pipelines, out_dir)


# Where Terraform's outputs are: both Azure backends read workspace coordinates from them.
TERRAFORM_OPTIONS = (
    BackendOption("--tf-dir", "tf_dir", "Terraform root to read outputs from", Path),
    BackendOption("--tf-state", "tf_state", "Terraform state file to read", Path),
)

BACKENDS: dict[str, BackendEntry] = {
    entry.name: entry
    for entry in (
        BackendEntry("local", "amlops.backends.local.backend", "LocalBackend"),
        BackendEntry(
            "azureml_v1",
            "amlops.backends.azureml_v1.backend",
            "AzureMLv1Backend",
            options=TERRAFORM_OPTIONS,
            exporter="amlops.backends.azureml_v1.export:export_v1",
        ),
        BackendEntry(
            "azureml_v2",
            "amlops.backends.azureml_v2.backend",
            "AzureMLv2Backend",
            options=TERRAFORM_OPTIONS,  # coordinates as v1 reads them
            exporter="amlops.backends.azureml_v2.export:export_v2",
        ),
    )
}


def _options_by_flag() -> dict[str, tuple[BackendOption, list[str]]]:
    """Each backend option once, with the backends that take it (two may share one)."""
    found: dict[str, tuple[BackendOption, list[str]]] = {}
    for entry in BACKENDS.values():
        for opt in entry.options:
            found.setdefault(opt.flag, (opt, []))[1].append(entry.name)
    return found


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """Every backend's own deploy options; using one with another backend is an error."""
    for opt, names in _options_by_flag().values():
        parser.add_argument(
            opt.flag, dest=opt.dest, type=opt.type, default=None,
            help=f"{opt.help} ({', '.join(names)} backends)" if len(names) > 1
            else f"{opt.help} ({names[0]} backend)",
        )  # fmt: skip


def backend_options(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """The chosen backend's options from ``args``; another backend's option is refused."""
    from amlops.errors import ConfigError

    chosen = BACKENDS[config.workspace.backend]
    for opt, names in _options_by_flag().values():
        given = getattr(args, opt.dest, None) is not None
        if given and chosen.name not in names:
            raise ConfigError(
                f"{opt.flag}: --env {config.env} uses the {chosen.name} backend; "
                f"{opt.flag} is for the {' and '.join(names)} backend"
                + ("s" if len(names) > 1 else "")
            )
    return {opt.dest: getattr(args, opt.dest, None) for opt in chosen.options}


def backend_class(config: Config) -> type[Backend]:
    """The class of the backend ``config.workspace.backend`` names."""
    return BACKENDS[config.workspace.backend].load()


def open_backend(
    config: Config,
    *,
    plan: bool,
    pipelines: Sequence[Pipeline] = (),
    options: dict[str, Any] | None = None,
) -> Backend:
    """The backend ``config.workspace.backend`` names, connected and ready for the stages."""
    return backend_class(config).open(config, plan=plan, pipelines=pipelines, options=options or {})
