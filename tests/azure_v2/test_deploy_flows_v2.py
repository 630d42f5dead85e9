"""The v2 deploy stages as ``deploy.py --env dev-v2`` runs them, through azure-ai-ml's real
``MLClient`` operations, across repeated deploys of a copy of this repo.

Faked edges, and only these: Azure ML / Azure Resource Manager, by ``FakeAzureML`` (an azure-core
transport, fake_azureml.py); Entra ID, by ``EntraTokenFake`` (azurite.py); the storage account's
DNS name, by ``AzuriteByName``. Uploads (dataset files, step snapshots) go to Azurite, which
checks every bearer token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from azurite import ACCOUNT, Azurite, EntraTokenFake, fail_after, running
from fake_azureml import AzuriteByName, FakeAzureML
from helpers import copy_repo

from amlops.backends.azureml_v2.backend import AzureMLv2Backend
from amlops.config import load_config
from amlops.deploy import Manifest, build_pipelines, deploy, render

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
RESOURCE_GROUP = "rg-amlops-dev"
WORKSPACE = "mlw-amlops-dev"
TEST_TIMEOUT_S = 120
# What infra/ creates: the workspace's default blob store and the two data stores, each with
# a container of its own on one storage account (here Azurite's account).
CONTAINERS = {"workspaceblobstore": "azureml-blobstore", "training": "training-data",
              "scoring": "scoring-data"}  # fmt: skip
OUTPUTS = {
    "subscription_id": SUBSCRIPTION,
    "resource_group_name": RESOURCE_GROUP,
    "workspace_name": WORKSPACE,
    "location": "westeurope",
    "datastore_names": {"training": "training", "scoring": "scoring"},
}


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with running(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    with fail_after(TEST_TIMEOUT_S, "a poller, a login prompt"):
        yield


@dataclass
class World:
    """A repo copy, the workspace it deploys to, and the storage account behind it."""

    root: Path
    service: FakeAzureML
    azurite: Azurite
    storage: AzuriteByName  # every storage request a deploy makes, as addressed

    def blob_options(self) -> dict[str, Any]:
        return {"transport": self.storage}

    def connect(
        self, env: str = "dev-v2", *, plan: bool = False, only: set[str] | None = None
    ) -> tuple[Any, Any, list]:
        config = load_config(env, self.root)
        if only is not None:  # as the CLI's --pipeline narrows the config
            config = replace(config, pipelines=tuple(p for p in config.pipelines if p.name in only))
        pipelines = build_pipelines(config)
        backend = AzureMLv2Backend.connect(
            config,
            plan=plan,
            pipelines=pipelines,
            credential=EntraTokenFake(),
            client_options={"transport": self.service},
            blob_options=self.blob_options(),
            outputs=OUTPUTS,
        )
        return config, backend, pipelines

    def deploy(
        self, env: str = "dev-v2", *, plan: bool = False, only: set[str] | None = None
    ) -> tuple[Manifest, str]:
        """``deploy.py --env <env> [--plan] [--pipeline ...]``: every stage, one backend."""
        config, backend, pipelines = self.connect(env, plan=plan, only=only)
        try:
            manifest = deploy(config, backend, pipelines, backend.stages, plan=plan, only=only)
        finally:
            backend.close()
        return manifest, render(manifest)


@pytest.fixture
def world(tmp_path: Path, azurite: Azurite) -> World:
    from azure.storage.blob import BlobServiceClient

    # Containers of their own keep tests apart on Azurite's one account.
    prefix = f"t{uuid.uuid4().hex[:12]}"
    service = FakeAzureML(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    service.add_compute("cpu-cluster", max_nodes=4)
    options = {"connection_verify": str(azurite.cert)}
    with BlobServiceClient(azurite.account_url, credential=EntraTokenFake(), **options) as blobs:
        for name, container in CONTAINERS.items():
            container = f"{prefix}-{container}"
            blobs.create_container(container)
            service.add_datastore(name, account=ACCOUNT, container=container,
                                  default=name == "workspaceblobstore")  # fmt: skip
    storage = AzuriteByName(azurite.endpoint, connection_verify=str(azurite.cert))
    return World(copy_repo(tmp_path / "repo"), service, azurite, storage)


def deployments(world: World, endpoint: str) -> dict[str, dict]:
    return world.service.items(f"batchEndpoints/{endpoint}/deployments")


def default_of(world: World, endpoint: str) -> str:
    return world.service.items("batchEndpoints")[endpoint]["properties"]["defaults"][
        "deploymentName"
    ]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def blobs(world: World, datastore: str) -> list[str]:
    from azure.storage.blob import ContainerClient

    store = world.service.items("datastores")[datastore]["properties"]
    with ContainerClient(
        world.azurite.account_url, store["containerName"], credential=EntraTokenFake(),
        connection_verify=str(world.azurite.cert),
    ) as container:  # fmt: skip
        return sorted(b.name for b in container.list_blobs())


def test_first_deploy_registers_publishes_and_schedules(world: World) -> None:
    """First ``deploy.py --env dev-v2``: data assets, an environment, code and components, a
    batch endpoint per pipeline whose default is its first PipelineComponentBatchDeployment,
    schedules; the summary prints each invocation URL and REST body. Fakes: FakeAzureML (Azure
    ML), EntraTokenFake (Entra ID), AzuriteByName (storage DNS)."""
    manifest, summary = world.deploy()
    service = world.service

    assert [(d["name"], d["version"], d["action"]) for d in manifest.datasets] == [
        ("diabetes", "1", "created"), ("diabetes-scoring", "1", "created"),
    ]  # fmt: skip
    assert [(e["name"], e["action"]) for e in manifest.environments] == [
        ("amlops-train", "created")
    ]
    data = service.items("data/diabetes/versions")["1"]["properties"]
    assert data["dataUri"].startswith("azureml://datastores/training/paths/diabetes/")
    assert data["dataType"] == "uri_folder"
    # train's steps import amlops: their environment is a build context shipping the wheel.
    environment = service.items("environments/amlops-train/versions")["1"]["properties"]
    build = environment["build"]
    assert build["dockerfilePath"] == "Dockerfile"
    container = service.items("datastores")["workspaceblobstore"]["properties"]["containerName"]
    context = build["contextUri"].split(f"/{container}/", 1)[1].rstrip("/")
    assert context.startswith("amlops/environments/")
    shipped = [b[len(context) + 1 :] for b in blobs(world, "workspaceblobstore")
               if b.startswith(context + "/")]  # fmt: skip
    assert "Dockerfile" in shipped and any(f.endswith(".whl") for f in shipped), shipped
    # The files went to the storage account behind the datastore, at content-addressed paths.
    folder = data["dataUri"].split("/paths/")[1]
    assert [b for b in blobs(world, "training") if b.startswith(folder + "/")]
    code = service.items("codes/amlops-code/versions")
    assert len(code) == 5  # prep, train, evaluate, register, score: one snapshot each
    default_store = service.items("datastores")["workspaceblobstore"]["properties"]
    uploaded = blobs(world, "workspaceblobstore")
    for version, asset in code.items():
        uri = asset["properties"]["codeUri"]
        folder = uri.split(f"/{default_store['containerName']}/", 1)[1]
        assert folder == f"amlops/code/{version}"
        assert [b for b in uploaded if b.startswith(folder + "/")], uri

    endpoints = {e["name"]: e for e in manifest.endpoints}
    assert {n: (e["action"], e["version"]) for n, e in endpoints.items()} == {
        "train": ("created", "0"), "batch_score": ("created", "0"),
    }  # fmt: skip
    for pipeline, endpoint in (("train", "train"), ("batch_score", "batch-score")):
        assert default_of(world, endpoint) == "version-0"
        [deployment] = deployments(world, endpoint).values()
        config = deployment["properties"]["deploymentConfiguration"]
        assert config["deploymentConfigurationType"] == "PipelineComponent"
        # The settings `amlops export` writes in deployment.yml.
        assert config["settings"] == {
            "default_compute": "cpu-cluster", "continue_on_step_failure": "false",
        }  # fmt: skip
        component = config["componentId"]["assetId"]
        assert f"/components/{pipeline}_pipeline/versions/" in component
        assert service.resources[component.lower()]["properties"]["componentSpec"]["type"] == (
            "pipeline"
        )
        url = f"https://{endpoint}.westeurope.inference.ml.azure.com/jobs"
        assert endpoints[pipeline]["url"] == url
        assert url in summary

    # The body azure-ai-ml's own batch_endpoints.invoke would send for these inputs.
    body = endpoints["batch_score"]["rest_body"]
    assert body == {"properties": {"inputData": sdk_batch_inputs({
        "model_name": ("string", "diabetes-model"), "model_version": ("string", "production"),
        "mini_batch_size": ("string", "1MB"),
        "scoring_data": ("mltable", "azureml://datastores/scoring/paths/diabetes/incoming"),
    })}}  # fmt: skip
    invoke = (
        f"POST with an Entra token for https://ml.azure.com: {json.dumps(body, sort_keys=True)}"
    )
    assert invoke in summary

    schedules = service.items("schedules")
    assert {n: s["properties"]["isEnabled"] for n, s in schedules.items()} == {
        "train-nightly": True, "score-weekdays": True,
    }  # fmt: skip
    job = schedules["train-nightly"]["properties"]["action"]["jobDefinition"]
    assert job["jobs"]["pipeline"]["componentId"] == component_of(world, "train")
    # A data input of a pipeline component has no default: each fire gives the pipeline's path.
    job = schedules["score-weekdays"]["properties"]["action"]["jobDefinition"]
    given = job["inputs"]["scoring_data"]
    assert (given["jobInputType"].lower(), given["uri"]) == (
        "mltable", "azureml://datastores/scoring/paths/diabetes/incoming",
    )  # fmt: skip
    assert manifest.changes == 2 + 1 + 2 + 2


def sdk_batch_inputs(inputs: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The ``inputData`` azure-ai-ml's BatchJobSchema writes for these (type, value) inputs:
    what ``batch_endpoints.invoke`` posts."""
    from azure.ai.ml import Input
    from azure.ai.ml._schema._deployment.batch.batch_job import BatchJobSchema
    from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY, PARAMS_OVERRIDE_KEY

    typed = {
        name: Input(type=kind, path=value) if kind in ("mltable", "uri_folder")
        else Input(type=kind, default=value)
        for name, (kind, value) in inputs.items()
    }  # fmt: skip
    context = {BASE_PATH_CONTEXT_KEY: Path("."), PARAMS_OVERRIDE_KEY: [{"input_data": typed}]}
    return BatchJobSchema(context=context).load(data={})["inputData"]


def component_of(world: World, endpoint: str) -> str:
    deployment = deployments(world, endpoint)[default_of(world, endpoint)]
    return deployment["properties"]["deploymentConfiguration"]["componentId"]["assetId"]


def test_a_plan_on_an_empty_workspace_says_what_a_deploy_would_create(world: World) -> None:
    """``--plan`` before the first deploy: everything "would be created", nothing is written.
    Fakes: FakeAzureML (Azure ML), EntraTokenFake (Entra ID), AzuriteByName (storage DNS)."""
    manifest, summary = world.deploy(plan=True)
    assert world.service.writes() == []
    assert {e["name"]: (e["action"], e["version"]) for e in manifest.endpoints} == {
        "train": ("created", "0"), "batch_score": ("created", "0"),
    }  # fmt: skip
    assert {s["action"] for s in manifest.schedules} == {"created"}
    assert "would be created" in summary


def test_redeploying_unchanged_config_writes_nothing(world: World) -> None:
    """Second deploy, nothing changed: only reads reach Azure ML (and a plan likewise). Fakes:
    FakeAzureML (Azure ML), EntraTokenFake (Entra ID), AzuriteByName (storage DNS)."""
    world.deploy()
    assert [m for m, _ in world.storage.sent if m == "PUT"]  # the first deploy uploaded
    world.service.clear()
    world.storage.sent.clear()
    manifest, summary = world.deploy()
    assert world.service.writes() == []
    assert world.storage.sent == []  # nothing to upload, so storage is not even read
    assert world.service.sent  # it did look
    assert manifest.changes == 0 and "nothing changed: all up to date" in summary
    assert {e["action"] for e in manifest.endpoints} == {"unchanged"}
    assert {s["action"] for s in manifest.schedules} == {"unchanged"}
    world.service.clear()
    plan, _ = world.deploy(plan=True)
    assert world.service.writes() == [] and plan.changes == 0


def test_a_changed_step_adds_a_deployment_and_a_revert_points_back(world: World) -> None:
    """A changed train step: a new deployment of the train endpoint, the default moved to it
    and the train schedule updated to run it; reverting points the default back with no new
    deployment. Fakes: FakeAzureML (Azure ML), EntraTokenFake (Entra ID), AzuriteByName
    (storage DNS)."""
    world.deploy()
    first = component_of(world, "train")
    script = next((world.root / "pipelines" / "steps" / "train").glob("*.py"))
    original = script.read_text()
    script.write_text(original + "\n# tuned\n")

    world.service.clear()
    plan, _ = world.deploy(plan=True)
    assert world.service.writes() == []
    assert {e["name"]: (e["action"], e["version"]) for e in plan.endpoints}["train"] == (
        "updated", "1",
    )  # fmt: skip

    manifest, summary = world.deploy()
    endpoints = {e["name"]: e for e in manifest.endpoints}
    assert (endpoints["train"]["action"], endpoints["train"]["version"]) == ("updated", "1")
    assert endpoints["batch_score"]["action"] == "unchanged"
    assert sorted(deployments(world, "train")) == ["version-0", "version-1"]
    assert default_of(world, "train") == "version-1"
    assert component_of(world, "train") != first
    assert len(deployments(world, "batch-score")) == 1
    schedules = {s["name"]: s["action"] for s in manifest.schedules}
    assert schedules == {"train-nightly": "updated", "score-weekdays": "unchanged"}
    job = world.service.items("schedules")["train-nightly"]["properties"]["action"]
    assert job["jobDefinition"]["jobs"]["pipeline"]["componentId"] == component_of(world, "train")

    script.write_text(original)
    world.service.clear()
    world.storage.sent.clear()
    manifest, _ = world.deploy()
    assert [m for m, _ in world.storage.sent if m == "PUT"] == []  # nothing re-uploaded
    train = {e["name"]: e for e in manifest.endpoints}["train"]
    assert (train["action"], train["version"], train["reverts"]) == ("updated", "0", True)
    assert default_of(world, "train") == "version-0"
    assert component_of(world, "train") == first
    assert sorted(deployments(world, "train")) == ["version-0", "version-1"]
    puts = [s.path for s in world.service.writes()]
    assert not [p for p in puts if "/deployments/" in p or "/components/" in p or "/codes/" in p]
    assert [p.rsplit("/", 1)[1] for p in puts if "/batchEndpoints/" in p] == ["train"]


def test_schedules_are_created_updated_and_disabled_by_name(world: World) -> None:
    """Config edits between deploys: a changed recurrence updates its schedule in place, a new
    one is created, one dropped from config is disabled (never deleted). Fakes: FakeAzureML
    (Azure ML), EntraTokenFake (Entra ID), AzuriteByName (storage DNS)."""
    world.deploy()
    config = world.root / "config" / "dev-v2.yml"
    edit(config, "      hours: [2]\n      minutes: [30]", "      hours: [3]\n      minutes: [15]")
    edit(config, "  score-weekdays:\n", "  score-hourly:\n")  # renamed: a new one, the old dropped
    world.service.clear()
    manifest, summary = world.deploy()
    actions = {s["name"]: s["action"] for s in manifest.schedules}
    assert actions == {
        "train-nightly": "updated", "score-hourly": "created", "score-weekdays": "disabled",
    }  # fmt: skip
    stored = world.service.items("schedules")
    assert {n: s["properties"]["isEnabled"] for n, s in stored.items()} == {
        "train-nightly": True, "score-hourly": True, "score-weekdays": False,
    }  # fmt: skip
    trigger = stored["train-nightly"]["properties"]["trigger"]
    assert trigger["schedule"] == {"hours": [3], "minutes": [15]}
    assert [s.method for s in world.service.writes()] == ["PUT", "PUT", "PUT"]  # no DELETE

    world.service.clear()
    again, _ = world.deploy()
    assert world.service.writes() == [] and again.changes == 0


def test_enabled_false_disables_a_schedule_and_true_enables_it_again(world: World) -> None:
    """``enabled: false`` in config disables the schedule in place; back to true, the same
    schedule is enabled again (one name, never a duplicate). Fakes: FakeAzureML (Azure ML),
    EntraTokenFake (Entra ID), AzuriteByName (storage DNS)."""
    world.deploy()
    config = world.root / "config" / "dev-v2.yml"
    on = "    description: Retrain on the latest registered data\n"
    edit(config, on, on + "    enabled: false\n")
    manifest, _ = world.deploy()
    assert {s["name"]: s["action"] for s in manifest.schedules}["train-nightly"] == "disabled"
    enabled = lambda: {  # noqa: E731
        n: s["properties"]["isEnabled"] for n, s in world.service.items("schedules").items()
    }
    assert enabled() == {"train-nightly": False, "score-weekdays": True}

    edit(config, "    enabled: false\n", "")
    manifest, _ = world.deploy()
    assert {s["name"]: s["action"] for s in manifest.schedules}["train-nightly"] == "updated"
    assert enabled() == {"train-nightly": True, "score-weekdays": True}
    world.service.clear()
    again, _ = world.deploy()
    assert world.service.writes() == [] and again.changes == 0


def test_a_deploy_of_one_pipeline_leaves_the_others_schedules_alone(world: World) -> None:
    """``--pipeline train`` after score-weekdays left config: batch_score is not this deploy's,
    so its schedule stays enabled until a deploy of every pipeline disables it. Fakes:
    FakeAzureML (Azure ML), EntraTokenFake (Entra ID), AzuriteByName (storage DNS)."""
    world.deploy()
    config = world.root / "config" / "dev-v2.yml"
    text = config.read_text()
    config.write_text(text[: text.index("  score-weekdays:\n")])
    world.service.clear()
    manifest, _ = world.deploy(only={"train"})
    assert [(s["name"], s["action"]) for s in manifest.schedules] == [
        ("train-nightly", "unchanged")
    ]
    assert world.service.writes() == []
    assert world.service.items("schedules")["score-weekdays"]["properties"]["isEnabled"] is True

    manifest, _ = world.deploy()
    assert {s["name"]: s["action"] for s in manifest.schedules}["score-weekdays"] == "disabled"
    assert world.service.items("schedules")["score-weekdays"]["properties"]["isEnabled"] is False


def test_a_datastore_trigger_is_refused_before_anything_is_read(world: World) -> None:
    """dev.yml's data-change schedule on v2: one line naming the file and key, exit code 2,
    before a single request. Fake: FakeAzureML (Azure ML), which records that nothing came."""
    from amlops.errors import ConfigError

    config = world.root / "config" / "dev-v2.yml"
    config.write_text(
        config.read_text()
        + "  score-on-new-data:\n    pipeline: batch_score\n"
        + "    datastore_trigger:\n      datastore: trigger\n      path: incoming\n"
    )
    with pytest.raises(ConfigError) as info:
        world.deploy()
    message = str(info.value)
    assert message.startswith(f"{config}: schedules.score-on-new-data.datastore_trigger: ")
    assert "no data-change trigger" in message and "\n" not in message
    assert info.value.exit_code == 2
    assert world.service.sent == []


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (
            "computes/cpu-cluster",
            r"^compute cluster 'cpu-cluster' in workspace 'mlw-amlops-dev' \(resource group "
            r"'rg-amlops-dev'\): .*not found.* \(compute.default in config\)$",
        ),
        (
            "datastores/scoring",
            r"^\S+/config/dev-v2.yml: datasets.diabetes-scoring: datastore 'scoring': "
            r".*not found.*$",
        ),
    ],
    ids=["compute", "datastore"],
)
def test_preflight_names_what_is_missing_and_changes_nothing(world, missing, message) -> None:
    """Preflight reads the workspace through azure-ai-ml and stops at the first thing missing,
    in one line, before any write. Fakes: FakeAzureML (Azure ML), EntraTokenFake (Entra ID)."""
    from amlops.errors import AmlopsError

    world.service.remove(missing)
    with pytest.raises(AmlopsError, match=message) as info:
        world.deploy()
    assert "\n" not in str(info.value)
    assert {s.method for s in world.service.sent} == {"GET"}


def test_preflight_refuses_more_nodes_than_the_cluster_has(world: World) -> None:
    """A ParallelStep asking for 8 nodes on a 4-node cluster: a config error (exit code 2)
    naming pipeline, step and both numbers, before any write. Fakes: FakeAzureML (Azure ML),
    EntraTokenFake (Entra ID)."""
    from amlops.errors import ConfigError

    edit(world.root / "pipelines" / "batch_score.py", 'output_action="append_row",',
         'output_action="append_row", node_count=8,')  # fmt: skip
    with pytest.raises(ConfigError) as info:
        world.deploy()
    assert str(info.value) == (
        "pipeline 'batch_score': step 'score' node_count 8 is more than compute cluster "
        "'cpu-cluster' allows (max_instances 4)"
    )
    assert info.value.exit_code == 2
    assert {s.method for s in world.service.sent} == {"GET"}
