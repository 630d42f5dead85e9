"""The v2 deploy stages as ``deploy.py --env dev-v2`` runs them, through azure-ai-ml's real
``MLClient`` operations, across repeated deploys of a copy of this repo.

Faked edges, and only these: Azure ML / Azure Resource Manager, by ``FakeAzureML`` (an azure-core
transport, fake_azureml.py); Entra ID, by ``EntraTokenFake`` (azurite.py); the storage account's
DNS name, by ``AzuriteByName``. Uploads (dataset files, step snapshots) go to Azurite, which
checks every bearer token.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azurite import ACCOUNT, Azurite, EntraTokenFake
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
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail, rather than hang, when something waits (a poller, a login prompt)."""

    def expired(signum, frame):  # noqa: ANN001
        raise TimeoutError(f"over {TEST_TIMEOUT_S} s: something is waiting")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class World:
    """A repo copy, the workspace it deploys to, and the storage account behind it."""

    root: Path
    service: FakeAzureML
    azurite: Azurite
    account: str

    def blob_options(self) -> dict[str, Any]:
        verify = str(self.azurite.cert)
        return {"transport": AzuriteByName(self.azurite.endpoint, connection_verify=verify)}

    def connect(self, env: str = "dev-v2", *, plan: bool = False) -> tuple[Any, Any, list]:
        config = load_config(env, self.root)
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

    def deploy(self, env: str = "dev-v2", *, plan: bool = False) -> tuple[Manifest, str]:
        """``deploy.py --env <env> [--plan]``: every stage, one backend, its summary."""
        config, backend, pipelines = self.connect(env, plan=plan)
        try:
            manifest = deploy(config, backend, pipelines, backend.stages, plan=plan)
        finally:
            backend.close()
        return manifest, render(manifest)


@pytest.fixture
def world(tmp_path: Path, azurite: Azurite) -> World:
    from azure.storage.blob import BlobServiceClient

    # One account per test keeps tests apart: Azurite's path-style URLs name it.
    account = f"st{uuid.uuid4().hex[:12]}"
    service = FakeAzureML(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    service.add_compute("cpu-cluster", max_nodes=4)
    options = {"connection_verify": str(azurite.cert)}
    with BlobServiceClient(azurite.account_url, credential=EntraTokenFake(), **options) as blobs:
        for name, container in CONTAINERS.items():
            container = f"{account}-{container}"[:63]
            blobs.create_container(container)
            service.add_datastore(name, account=ACCOUNT, container=container,
                                  default=name == "workspaceblobstore")  # fmt: skip
    return World(copy_repo(tmp_path / "repo"), service, azurite, account)


def test_probe(world: World) -> None:
    manifest, summary = world.deploy()
    print(summary)
    for s in world.service.sent:
        print(s.method, s.url)


def test_probe2(world: World) -> None:
    import json
    config, backend, pipelines = world.connect()
    m = deploy(config, backend, pipelines, ["register", "build", "publish"], plan=False)
    print(render(m))
    for s in world.service.sent:
        print(s.method, s.url[:200])
    for k, r in world.service.resources.items():
        if "batchendpoints" in k:
            print(json.dumps(r, indent=1)[:3000])
    e = backend.client.batch_endpoints.get("train")
    print(e.defaults, type(e.defaults))
