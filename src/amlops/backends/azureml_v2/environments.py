"""v2 environments: a conda file on the base image, or, when a step imports ``amlops``, a docker
build context that also holds this project's runtime wheel.

Why a build context: v2 has no counterpart of v1's ``add_private_pip_wheel``, and a pip entry
pointing into workspace storage would need a SAS the image build cannot get on an identity-only
workspace. A build context is what azure-ai-ml itself uploads to workspace storage for the image
build to read (operations/_environment_operations.py, ``_check_and_upload_env_build_context``:
``build.path`` becomes the blob folder's URL). The wheel travels inside it; the conda file names
it by its path in the image, and the Dockerfile builds the conda environment as Azure ML's own
images do (``AZUREML_CONDA_ENVIRONMENT_PATH``, first on ``PATH``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from amlops.backends.runtime_wheel import build_wheel, is_runtime_pin, source_hash
from amlops.config import EnvironmentConfig
from amlops.content import hash_text
from amlops.errors import ConfigError

# The image conda environments are built on, as azure-ai-ml's own examples use it.
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
DOCKERFILE = "Dockerfile"
CONDA_FILE = "conda.yml"
ENVIRONMENT_PATH = "amlops/environments"  # build contexts on the default datastore, by content
IN_IMAGE = "/amlops-runtime"  # where the Dockerfile copies the conda file and the wheel
CONDA_PREFIX = "/azureml-envs/amlops"

_DOCKERFILE = """\
FROM {image}
ENV AZUREML_CONDA_ENVIRONMENT_PATH={prefix}
COPY {conda} {wheel} {in_image}/
RUN conda env create -p $AZUREML_CONDA_ENVIRONMENT_PATH -f {in_image}/{conda} -q && \\
    conda clean -a -y
ENV PATH=$AZUREML_CONDA_ENVIRONMENT_PATH/bin:$PATH
"""


@dataclass(frozen=True)
class Definition:
    """What an environment version is made of: its fingerprint, and whether it ships the
    runtime (then it is a build context, else the conda file on ``BASE_IMAGE``)."""

    name: str
    fingerprint: str
    runtime: bool


def definition(cfg: EnvironmentConfig, root: Path, *, needs_runtime: bool) -> Definition:
    """The environment's definition; the runtime's sources count only when it ships them."""
    text = cfg.conda_file.read_text()
    runtime = needs_runtime or bool(_runtime_pins(_conda(cfg)))
    parts = [text, BASE_IMAGE] + ([source_hash(root)] if runtime else [])
    return Definition(cfg.name, hash_text(*parts)[:16], runtime)


def write_build_context(cfg: EnvironmentConfig, root: Path, dest: Path) -> Path:
    """Write ``Dockerfile``, ``conda.yml`` (its pip list naming the wheel) and the wheel into
    ``dest``; the same sources give the same bytes."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(root, dest)
    conda = _conda(cfg)
    deps = conda.setdefault("dependencies", [])
    pip = next((d for d in deps if isinstance(d, dict) and "pip" in d), None)
    if pip is None:
        if "pip" not in deps:
            deps.append("pip")
        pip = {"pip": []}
        deps.append(pip)
    pip["pip"] = [p for p in pip["pip"] or [] if not is_runtime_pin(str(p))]
    pip["pip"].append(f"{IN_IMAGE}/{wheel.name}")
    (dest / CONDA_FILE).write_text(yaml.safe_dump(conda, sort_keys=False))
    (dest / DOCKERFILE).write_text(
        _DOCKERFILE.format(
            image=BASE_IMAGE,
            prefix=CONDA_PREFIX,
            conda=CONDA_FILE,
            wheel=wheel.name,
            in_image=IN_IMAGE,
        )
    )
    return dest


def environment_document(defn: Definition, context: str, tags: dict[str, str]) -> dict[str, Any]:
    """The environment as ``az ml environment create --file`` and azure-ai-ml read it;
    ``context`` is the build context (a folder, or its URL once uploaded) or, without the
    runtime, the conda file."""
    doc: dict[str, Any] = {"name": defn.name}
    if defn.runtime:
        doc["build"] = {"path": context, "dockerfile_path": DOCKERFILE}
    else:
        doc["image"] = BASE_IMAGE
        doc["conda_file"] = context
    doc["tags"] = dict(tags)
    return doc


def _conda(cfg: EnvironmentConfig) -> dict[str, Any]:
    try:
        conda = yaml.safe_load(cfg.conda_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{cfg.conda_file}: cannot read the conda file ({exc})") from None
    if not isinstance(conda, dict):
        raise ConfigError(f"{cfg.conda_file}: a conda file is a mapping (name, dependencies)")
    return conda


def _runtime_pins(conda: dict[str, Any]) -> list[str]:
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(p) for p in dep["pip"] or [] if is_runtime_pin(str(p))]
    return []
