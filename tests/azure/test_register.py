"""Datasets and environments get a new version only when their definition changed.

Faked edge (see aml_offline): OfflineAssets stands in for the dataset, environment and
artifact services; the Environment objects, conda parsing and the private wheel are real.
"""

from __future__ import annotations

import re
import zipfile

import pytest
from aml_offline import CONFIG, make_backend, write_config

from amlops.backends.azureml_v1.register import ENV_FINGERPRINT_VAR
from amlops.backends.runtime_wheel import build_wheel
from amlops.errors import ConfigError


@pytest.fixture
def backend(workspace, dry_run, assets, project):
    return make_backend(workspace, write_config(project), assets, dry_run)


def actions(changes):
    return [(c.kind, c.name, c.action, c.version) for c in changes]


def test_datasets_register_once_and_again_only_on_change(backend, assets, project):
    config = backend.config
    assert actions(backend.register_datasets(config.datasets, plan=True)) == [
        ("dataset", "diabetes", "created", "1"),
        ("dataset", "lookup", "created", "1"),
    ]
    assert assets.datasets == {} and assets.uploads == []  # a plan changes nothing
    assert actions(backend.register_datasets(config.datasets, plan=False)) == [
        ("dataset", "diabetes", "created", "1"),
        ("dataset", "lookup", "created", "1"),
    ]
    [(store, path, files)] = assets.uploads
    # Uploaded data lives at a folder named by its content, under the configured path.
    assert (store, files) == ("training", ["diabetes.csv"])
    assert re.fullmatch(r"diabetes/[0-9a-f]{16}", path)
    assert actions(backend.register_datasets(config.datasets, plan=False)) == [
        ("dataset", "diabetes", "unchanged", "1"),
        ("dataset", "lookup", "unchanged", "1"),
    ]
    assert len(assets.uploads) == 1  # unchanged data is not uploaded again

    moved = CONFIG.replace("datastore_path: lookup", "datastore_path: lookup-v2")
    config = write_config(project, moved)
    changes = backend.register_datasets(config.datasets, plan=False)
    assert actions(changes)[1] == ("dataset", "lookup", "updated", "2")
    assert changes[1].detail["path"] == "lookup-v2"


def test_uploaded_local_data_change_is_a_new_version(backend, assets, project):
    data = project / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n1,2\n")
    local = (
        "  local:\n    kind: tabular\n    path: data\n    datastore: training\n    upload: true\n"
    )
    text = CONFIG.replace("environments:", local + "environments:")
    config = write_config(project, text)
    [local] = [
        c for c in backend.register_datasets(config.datasets, plan=False) if c.name == "local"
    ]
    assert (local.action, local.version) == ("created", "1")
    first_path = local.detail["path"]
    (data / "rows.csv").write_text("a,b\n1,3\n")
    [local] = [
        c for c in backend.register_datasets(config.datasets, plan=False) if c.name == "local"
    ]
    assert (local.action, local.version) == ("updated", "2")
    # Version 2's files went to a folder of their own: version 1 still points at its own.
    assert local.detail["path"] != first_path and local.detail["path"].startswith("local/")
    assert assets.uploads[-1] == ("training", local.detail["path"], ["rows.csv"])
    assert assets.datasets["local"][0][0] == ("tabular", "training", first_path)


def test_dataset_needs_a_datastore_on_azure(backend, project):
    config = write_config(
        project, CONFIG.replace("    datastore: scoring\n", "    source: sklearn:iris\n")
    )
    with pytest.raises(ConfigError, match=r"datasets.lookup.datastore: Azure datasets live on"):
        backend.register_datasets(config.datasets, plan=False)


def test_environment_versions_follow_the_conda_file(backend, assets, project):
    envs = backend.config.environments
    assert actions(backend.register_environments(envs, plan=True)) == [
        ("environment", "test-env", "created", "1")
    ]
    assert assets.environments == {}
    assert actions(backend.register_environments(envs, plan=False)) == [
        ("environment", "test-env", "created", "1")
    ]
    registered = assets.environments["test-env"][0]
    assert "pandas" in list(registered.python.conda_dependencies.pip_packages)
    assert registered.environment_variables[ENV_FINGERPRINT_VAR]
    assert actions(backend.register_environments(envs, plan=False)) == [
        ("environment", "test-env", "unchanged", "1")
    ]
    conda = project / "envs" / "test.yml"
    conda.write_text(conda.read_text().replace("- pandas", "- pandas==2.2.3"))
    assert actions(backend.register_environments(envs, plan=False)) == [
        ("environment", "test-env", "updated", "2")
    ]
    assert assets.wheels == []  # nothing asked for this project's runtime


def test_runtime_dependency_becomes_a_private_wheel(backend, assets, project):
    conda = project / "envs" / "test.yml"
    conda.write_text(
        conda.read_text().replace("      - pandas\n", "      - pandas\n      - amlops\n")
    )
    [change] = backend.register_environments(backend.config.environments, plan=False)
    assert change.detail["private_wheel"] is True
    [wheel] = assets.wheels
    env = assets.environments["test-env"][0]
    pips = list(env.python.conda_dependencies.pip_packages)
    assert "amlops" not in pips
    assert f"https://storage.invalid/wheels/{wheel.name}" in pips
    # Unchanged sources: no new version; a changed runtime module: a new wheel and version.
    [same] = backend.register_environments(backend.config.environments, plan=False)
    assert same.action == "unchanged"
    (project / "src" / "amlops" / "runtime.py").write_text("X = 2\n")
    [changed] = backend.register_environments(backend.config.environments, plan=False)
    assert (changed.action, changed.version) == ("updated", "2")
    assert len(assets.wheels) == 2 and assets.wheels[0].name != assets.wheels[1].name


def test_private_wheel_is_reproducible_and_installable_metadata(project, tmp_path):
    first = build_wheel(project, tmp_path / "a")
    second = build_wheel(project, tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    assert first.name.startswith("amlops-0.1.0+") and first.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(first) as zf:
        names = set(zf.namelist())
        version = first.name.split("-")[1]
        assert {"amlops/__init__.py", "amlops/runtime.py"} <= names
        metadata = zf.read(f"amlops-{version}.dist-info/METADATA").decode()
        assert f"Version: {version}" in metadata
        assert f"amlops-{version}.dist-info/RECORD" in names


def test_steps_importing_the_runtime_get_the_wheel(workspace, dry_run, assets, project):
    from aml_offline import chain_pipeline

    (project / "steps" / "train" / "main.py").write_text("from amlops.runtime import X\n")
    backend = make_backend(
        workspace, write_config(project), assets, dry_run, pipelines=[chain_pipeline(project)]
    )
    [change] = backend.register_environments(backend.config.environments, plan=False)
    assert change.detail["private_wheel"] is True and len(assets.wheels) == 1
    pips = list(assets.environments["test-env"][0].python.conda_dependencies.pip_packages)
    assert pips[-1] == f"https://storage.invalid/wheels/{assets.wheels[0].name}"


def test_service_not_found_messages_are_recognised():
    from azureml.exceptions import UserErrorException

    from amlops.backends.sdk_errors import is_not_found as _not_found

    # The exact texts azureml-core raises for a missing environment and a missing dataset.
    assert _not_found(Exception("Error retrieving the environment definition. Code: 404\n: {}"))
    assert _not_found(
        UserErrorException('Cannot find dataset registered with name "x" in the workspace.')
    )
    assert not _not_found(Exception("Error retrieving the environment definition. Code: 403"))
    # What the pipeline service (and its dry run) says of a missing endpoint.
    assert _not_found(Exception("PipelineEndpoint with name train does not exist"))
