"""The step image's conda file against the locks the local runs test with.

Locally the steps run in the project's .venv; on Azure they run in an image built from
pipelines/environments/train.yml. The two must hold the same packages, or a local run proves
nothing about the Azure one. And mlflow must be one that the pinned azureml-mlflow accepts:
left to itself pip resolves a conflict there by falling back to an azureml-mlflow that
predates mlflow 3, and the steps fail only on Azure.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CONDA_FILE = REPO / "pipelines" / "environments" / "train.yml"
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def conda_pip_requirements(path: Path = CONDA_FILE) -> list[Requirement]:
    spec = yaml.safe_load(path.read_text())
    pip = [dep["pip"] for dep in spec["dependencies"] if isinstance(dep, dict) and "pip" in dep]
    assert len(pip) == 1, f"{path.name}: expected one pip section, found {len(pip)}"
    return [Requirement(line) for line in pip[0]]


def lock(name: str) -> dict[str, str]:
    """A uv-compiled lock as {canonical name: pinned version}."""
    pins = {}
    for line in (REPO / "requirements" / name).read_text().splitlines():
        if m := PINNED.match(line):
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def exact_pin(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==":
        return specs[0].version
    return None


def pins() -> dict[str, str]:
    return {canonicalize_name(r.name): exact_pin(r) for r in conda_pip_requirements()}


def test_every_step_package_is_pinned_exactly():
    # An unpinned or ranged package in the image floats to whatever the index has on the day
    # Azure builds it, which is not what the locks (and so the local runs) hold.
    loose = [str(r) for r in conda_pip_requirements() if exact_pin(r) is None]
    assert not loose, f"{CONDA_FILE.name}: pin these with ==: {loose}"


@pytest.mark.parametrize("name", ["mlflow", "azureml-mlflow"])
def test_mlflow_and_its_azure_plugin_are_pinned(name):
    assert pins().get(name), f"{CONDA_FILE.name}: {name} must be pinned with =="


def test_step_pins_equal_the_locks():
    # The runtime lock is what the local steps run with; the azure-only packages (azureml-*)
    # are locked only in the dev lock.
    runtime, dev = lock("runtime.txt"), lock("dev.txt")
    mismatched, unlocked = [], []
    for name, version in pins().items():
        locked = runtime.get(name) or dev.get(name)
        if locked is None:
            unlocked.append(name)
        elif version != locked:
            mismatched.append(f"{name}: {CONDA_FILE.name} {version}, lock {locked}")
    assert not mismatched, "step image and locks disagree: " + "; ".join(mismatched)
    assert not unlocked, f"step packages no lock holds (never run locally): {unlocked}"


def installed(name: str, pinned: str) -> metadata.Distribution:
    dist = metadata.distribution(name)
    assert dist.version == pinned, (
        f"installed {name} {dist.version}, {CONDA_FILE.name} pins {pinned}: sync the venv "
        "(make .venv/.dev)"
    )
    return dist


def requirement_on(dist: metadata.Distribution, name: str) -> Requirement:
    for line in dist.requires or []:
        req = Requirement(line)
        if canonicalize_name(req.name) == name and (
            req.marker is None or req.marker.evaluate({"extra": ""})
        ):
            return req
    raise AssertionError(f"{dist.metadata['Name']} {dist.version} declares no {name} requirement")


def test_pinned_azureml_mlflow_admits_the_pinned_mlflow():
    # azureml-mlflow declares mlflow-skinny, not mlflow; mlflow requires the skinny of its own
    # version. Both are read from the installed distributions' metadata, which the dev lock
    # (checked equal to the conda pins above) puts in the venv.
    step = pins()
    mlflow = installed("mlflow", step["mlflow"])
    azureml_mlflow = installed("azureml-mlflow", step["azureml-mlflow"])
    skinny = exact_pin(requirement_on(mlflow, "mlflow-skinny"))
    assert skinny, f"mlflow {mlflow.version} does not pin mlflow-skinny exactly"
    accepted = requirement_on(azureml_mlflow, "mlflow-skinny").specifier
    assert accepted.contains(Version(skinny), prereleases=True), (
        f"azureml-mlflow {azureml_mlflow.version} requires mlflow-skinny{accepted}; "
        f"mlflow {mlflow.version} needs mlflow-skinny {skinny}"
    )
