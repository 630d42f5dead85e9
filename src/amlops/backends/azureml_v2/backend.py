"""The Azure ML SDK v2 backend (azure-ai-ml): the deploy stages over ``MLClient``.

Every decision is the shared policy's (amlops.policy); this module reads the workspace through
azure-ai-ml's operations and applies the answer. Workspace coordinates and auth are the v1
backend's (Terraform < config < environment; ``workspace.auth``), so one config switches
backends by one line.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from amlops.backends.azure_auth import deploy_credential
from amlops.backends.azureml_v2.compile import (
    V2_STEP_KINDS,
    Compiled,
    Refs,
    compile_pipeline,
    component_name,
    datapath_input,
)
from amlops.backends.azureml_v2.environments import (
    BASE_IMAGE,
    DOCKERFILE,
    ENVIRONMENT_PATH,
    Definition,
    definition,
    write_build_context,
)
from amlops.backends.azureml_v2.export import deployment_document
from amlops.backends.azureml_v2.naming import deployment_name, deployment_version, endpoint_name
from amlops.backends.azureml_v2.schedules import JOB_FILE, Target, check_schedules, reconcile
from amlops.backends.base import (
    UNCHANGED,
    Change,
    NoRunStage,
)
from amlops.backends.coordinates import Coordinates, resolve, terraform_option, terraform_outputs
from amlops.backends.dataset_blobs import (
    BlobLocation,
    dataset_version,
    upload_dataset_files,
    upload_source,
)
from amlops.backends.runtime_wheel import steps_needing_runtime
from amlops.backends.sdk_errors import first_line
from amlops.backends.terraform_outputs import (
    TerraformSource,
)
from amlops.config import Config, DatasetConfig, EnvironmentConfig, ScheduleConfig
from amlops.content import hash_text, walk_files
from amlops.errors import AmlopsError, ConfigError
from amlops.policy import decide_publish, decide_version
from amlops.schedule_rules import parameter_kinds
from amlops.spec import DataPathParam, DatasetInput, Pipeline, Step
from amlops.specjson import document_fingerprint, pipeline_document

log = logging.getLogger("amlops.azureml_v2")

FINGERPRINT_TAG = "amlops_fingerprint"
CODE_PATH = "amlops/code"  # step snapshots on the default datastore, content-addressed
CODE_ASSET = "amlops-code"  # their code asset: one version per content digest


class AzureMLv2Backend(NoRunStage):
    name = "azureml_v2"
    step_kinds = frozenset(V2_STEP_KINDS)

    def __init__(
        self,
        client: Any,
        *,
        config: Config,
        credential: Any,
        coordinates: Coordinates | None = None,
        max_nodes: int | None = None,
        pipelines: Sequence[Pipeline] = (),
        blob_options: Mapping[str, Any] | None = None,
    ):
        """``client`` is an ``MLClient``; ``blob_options`` go to azure-storage-blob (tests)."""
        self.client = client
        self.config = config
        self.credential = credential
        self.coordinates = coordinates
        self.max_nodes = max_nodes
        self.blob_options = dict(blob_options or {})
        self._pipelines = {p.name: p for p in pipelines}
        # Versions a plan's register stage would create: what its build and publish would pin.
        self._planned_environments: dict[str, str] = {}
        self._planned_datasets: dict[str, str] = {}

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        options: Mapping[str, Any] | None = None,
    ) -> AzureMLv2Backend:
        """``options``: ``tf_dir`` / ``tf_state`` (--tf-dir, --tf-state) name Terraform."""
        terraform = terraform_option(options)
        return cls.connect(config, plan=plan, pipelines=pipelines, terraform=terraform)

    @classmethod
    def connect(
        cls,
        config: Config,
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        credential: Any = None,
        client_options: Mapping[str, Any] | None = None,
        blob_options: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        terraform: TerraformSource | None = None,
    ) -> AzureMLv2Backend:
        """Coordinates, credential, ``MLClient``, then read-only preflight. For tests:
        ``credential``, ``client_options`` (e.g. an azure-core ``transport`` for Azure ML),
        ``blob_options`` (the same for the storage account) and ``outputs`` (Terraform's)."""
        from azure.ai.ml import MLClient

        check_schedules(config.schedules, str(config.file))  # before anything is read
        if outputs is None:
            outputs = terraform_outputs(config, terraform)
        coords = resolve(config, outputs)
        credential = credential or deploy_credential(config.workspace.auth, coords)
        options = dict(client_options or {})
        client = MLClient(
            credential,
            coords.subscription_id,
            coords.resource_group,
            coords.workspace_name,
            **options,
        )
        max_nodes = preflight(client, coords, config, pipelines)
        return cls(
            client,
            config=config,
            credential=credential,
            coordinates=coords,
            max_nodes=max_nodes,
            pipelines=pipelines,
            blob_options=blob_options,
        )

    def close(self) -> None:
        close = getattr(self.credential, "close", None)
        if close is not None:
            close()

    # -- register ---------------------------------------------------------------------------

    def register_datasets(self, datasets: Sequence[DatasetConfig], *, plan: bool) -> list[Change]:
        from azure.ai.ml.entities import Data

        where = str(self.config.file)
        changes = []
        for cfg in datasets:
            if cfg.datastore is None:
                raise ConfigError(f"{where}: datasets.{cfg.name}.datastore: name one")
            datastore = self._datastore_name(cfg.datastore)
            with tempfile.TemporaryDirectory(prefix="amlops-upload-") as tmp:
                upload_from = upload_source(cfg, Path(tmp), where) if cfg.upload else None
                version = dataset_version(cfg, datastore, upload_from)
                base, path, fp = version.base, version.path, version.fingerprint
                detail = {"datastore": datastore, "path": path, "fingerprint": fp}
                change = decide_version(
                    "dataset", cfg.name, fp, self._latest(self.client.data, cfg.name)
                )
                change = replace(change, detail={**change.detail, **detail})
                if plan and change.changed:
                    self._planned_datasets[cfg.name] = str(change.version)
                if plan or not change.changed:
                    changes.append(change)
                    continue
                if upload_from is not None:
                    location = self._blob_location(datastore)
                    upload_dataset_files(
                        upload_from, location, base, self.credential, **self.blob_options
                    )
            self.client.data.create_or_update(
                Data(
                    name=cfg.name,
                    version=change.version,
                    # Tabular data too is a folder here: an mltable asset needs an MLTable file.
                    type="uri_folder",
                    path=f"azureml://datastores/{datastore}/paths/{path}",
                    description=cfg.description or None,
                    tags={FINGERPRINT_TAG: fp, "kind": cfg.kind},
                )
            )
            changes.append(change)
        return changes

    def register_environments(
        self, environments: Sequence[EnvironmentConfig], *, plan: bool
    ) -> list[Change]:
        """Steps that import ``amlops`` get an environment that ships its runtime wheel
        (amlops.backends.azureml_v2.environments)."""
        runtime = steps_needing_runtime(self._pipelines.values(), self._default_environment())
        changes = []
        for cfg in environments:
            defn = definition(cfg, self.config.root, needs_runtime=cfg.name in runtime)
            latest = self._latest(self.client.environments, cfg.name)
            change = decide_version("environment", cfg.name, defn.fingerprint, latest)
            change = replace(change, detail={**change.detail, "private_wheel": defn.runtime})
            if plan:
                if change.changed:
                    self._planned_environments[cfg.name] = str(change.version)
                changes.append(change)
                continue
            if change.changed:
                entity = self._environment(cfg, defn, str(change.version))
                self.client.environments.create_or_update(entity)
            changes.append(change)
        return changes

    def _environment(self, cfg: EnvironmentConfig, defn: Definition, version: str) -> Any:
        from azure.ai.ml.entities import BuildContext, Environment

        tags = {FINGERPRINT_TAG: defn.fingerprint}
        if not defn.runtime:
            return Environment(
                name=cfg.name,
                version=version,
                image=BASE_IMAGE,
                conda_file=str(cfg.conda_file),
                tags=tags,
            )
        # Uploaded as step code is (the deploy's credential, content-addressed), to the URL
        # form azure-ai-ml itself gives an uploaded build context (trailing '/').
        location = self._blob_location(None)
        with tempfile.TemporaryDirectory(prefix="amlops-env-") as tmp:
            context = write_build_context(cfg, self.config.root, Path(tmp) / cfg.name)
            upload = upload_dataset_files(
                context, location, ENVIRONMENT_PATH, self.credential, **self.blob_options
            )
        url = f"{location.account_url}/{location.container}/{upload.path}/"
        return Environment(
            name=cfg.name,
            version=version,
            build=BuildContext(path=url, dockerfile_path=DOCKERFILE),
            tags=tags,
        )

    # -- build and publish ------------------------------------------------------------------

    def build(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]:
        """Compile each pipeline and (not in a plan) load and validate it with azure-ai-ml."""
        changes = []
        for pipeline in pipelines:
            self._pipelines[pipeline.name] = pipeline
            self._check_node_counts(pipeline)
            compiled = self._compile(pipeline, upload=False)
            if not plan:
                with tempfile.TemporaryDirectory(prefix="amlops-v2-") as tmp:
                    job = load_compiled(compiled, Path(tmp))
                    result = job._validate()
                    if not result.passed:
                        raise AmlopsError(
                            f"pipeline {pipeline.name!r} does not validate on v2: "
                            f"{next(iter(result.error_messages.values()), '')}"
                        )
            detail: dict[str, Any] = {"steps": len(pipeline.steps)}
            if compiled.fixed:
                detail["fixed_at_publish"] = compiled.fixed
            changes.append(Change("pipeline", pipeline.name, UNCHANGED, None, detail))
        return changes

    def publish(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]:
        """A batch endpoint per pipeline; a new pipeline component deployment only when the
        fingerprint changed; the default deployment moves, and a revert points it back."""
        changes = []
        for pipeline in pipelines:
            self._pipelines[pipeline.name] = pipeline
            self._check_node_counts(pipeline)
            changes.append(self._publish(pipeline, plan=plan))
        return changes

    def _publish(self, pipeline: Pipeline, *, plan: bool) -> Change:
        from azure.ai.ml.entities import BatchEndpoint

        # Not re-exported by azure.ai.ml (1.35.2); load_batch_deployment reads model deployments.
        from azure.ai.ml.entities._load_functions import load_pipeline_component_batch_deployment

        name = endpoint_name(pipeline.name)
        offline = self._compile(pipeline, upload=False)
        fp = self._fingerprint(pipeline, offline)
        endpoint = _get_or_none(lambda: self.client.batch_endpoints.get(name))
        versions = None
        default = None
        deployments: dict[str, Any] = {}
        if endpoint is not None:
            for d in self.client.batch_deployments.list(endpoint_name=name):
                version = deployment_version(d.name)
                if version is not None:
                    deployments[version] = d
            versions = {v: (d.tags or {}).get(FINGERPRINT_TAG, "") for v, d in deployments.items()}
            default = deployment_version(default_deployment(endpoint) or "")
        # How to invoke it, on every deploy: a caller reads the manifest, not the first one.
        detail: dict[str, Any] = {
            "endpoint": name,
            "rest_body": rest_body(offline),
        }
        if endpoint is not None and endpoint.scoring_uri:
            detail["url"] = endpoint.scoring_uri
        change = decide_publish(pipeline.name, fp, versions, default, detail)
        if plan or change.action == UNCHANGED:
            return change
        if endpoint is None:
            endpoint = self.client.batch_endpoints.begin_create_or_update(
                BatchEndpoint(name=name, description=pipeline.description or pipeline.name)
            ).result()
        version = str(change.version)
        if version not in deployments:
            compiled = self._compile(pipeline, upload=True)
            with tempfile.TemporaryDirectory(prefix="amlops-v2-") as tmp:
                component = load_compiled(compiled, Path(tmp), pipeline_component=True)
                component.version = version_label(fp)
                registered = self.client.components.create_or_update(component)
            # The document export writes, pointing at the registered component: what a
            # reviewer reads is what is submitted.
            doc = deployment_document(pipeline, version, self.config.compute)
            doc.update(component=f"azureml:{registered.id}", tags={FINGERPRINT_TAG: fp})
            with tempfile.TemporaryDirectory(prefix="amlops-v2-") as tmp:
                path = Path(tmp) / "deployment.yml"
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                deployment = load_pipeline_component_batch_deployment(path)
            self.client.batch_deployments.begin_create_or_update(deployment).result()
        endpoint.defaults = {"deployment_name": deployment_name(version)}
        endpoint = self.client.batch_endpoints.begin_create_or_update(endpoint).result()
        detail = {
            **change.detail,
            "url": endpoint.scoring_uri,
            "deployment": deployment_name(version),
        }
        return replace(change, detail=detail)

    def schedule(
        self,
        schedules: Sequence[ScheduleConfig],
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        only: Collection[str] | None = None,
    ) -> list[Change]:
        """Reconcile by name; with ``only``, leave other pipelines' schedules alone."""
        # Not re-exported by azure.ai.ml (1.35.2); the loader `az ml schedule create` uses.
        from azure.ai.ml.entities._load_functions import load_schedule

        for p in pipelines:
            self._pipelines[p.name] = p
        targets: dict[str, Target] = {}
        for name in sorted({s.pipeline for s in schedules}):
            spec = self._pipelines.get(name)
            if spec is None:
                raise AmlopsError(f"schedule stage: pipeline {name!r} was not built in this deploy")
            component = self._default_component(spec)
            if component is None and not plan:
                continue  # reconcile says "publish first"
            datapaths = {
                p.name: datapath_input(p, self._datastore_name)
                for p in spec.parameters
                if isinstance(p, DataPathParam)
            }
            targets[name] = Target(
                component, parameter_kinds(spec), datapaths, self._datastore_name
            )

        def load(doc: dict[str, Any], job: dict[str, Any]) -> Any:
            with tempfile.TemporaryDirectory(prefix="amlops-v2-") as tmp:
                (Path(tmp) / JOB_FILE).write_text(yaml.safe_dump(job, sort_keys=False))
                path = Path(tmp) / "schedule.yml"
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                return load_schedule(path)

        return reconcile(
            schedules,
            operations=self.client.schedules,
            targets=targets,
            where=str(self.config.file),
            plan=plan,
            load_schedule=load,
            # A v2 schedule's target is its pipeline's name (kept in a tag).
            in_scope=None if only is None else (lambda s: s.target in only),
        )

    # -- helpers ----------------------------------------------------------------------------

    def _datastore_name(self, name: str) -> str:
        return self.coordinates.datastore(name) if self.coordinates else name

    def _default_environment(self) -> str | None:
        envs = self.config.environments
        return envs[0].name if envs else None

    def _blob_location(self, datastore: str | None) -> BlobLocation:
        from azure.ai.ml.entities import AzureBlobDatastore

        store = (
            self.client.datastores.get(datastore)
            if datastore
            else self.client.datastores.get_default()
        )
        # Its type is DatastoreType.AZURE_BLOB ("AzureBlob"), not a lower-case string.
        if not isinstance(store, AzureBlobDatastore):
            raise AmlopsError(
                f"datastore {store.name!r} is {store.type}; uploads need an Azure Blob datastore"
            )
        protocol = store.protocol or "https"
        endpoint = store.endpoint or "core.windows.net"
        return BlobLocation(
            f"{protocol}://{store.account_name}.blob.{endpoint}", store.container_name
        )

    def _refs(self, upload: bool) -> Refs:
        kinds = {ds.name: ds.kind for ds in self.config.datasets}

        def environment(name: str) -> str:
            version = self._planned_environments.get(name)
            if version is None:
                latest = self._latest(self.client.environments, name)
                if latest is None:
                    raise ConfigError(f"environment {name!r} is not registered: run register first")
                version = str(latest[0])
            return f"azureml:{name}:{version}"

        def dataset(item: DatasetInput) -> tuple[str, str]:
            version = item.version
            if version == "latest":
                version = self._planned_datasets.get(item.dataset, version)
            if version == "latest":
                # azure-ai-ml resolves name@latest to a version when the pipeline component is
                # created (operations/_operation_orchestrator.py, _resolve_name_version_from_
                # name_label): pinned at publish, so it is part of the fingerprint.
                latest = self._latest(self.client.data, item.dataset)
                if latest is None:
                    raise ConfigError(f"dataset {item.dataset!r} is not registered")
                version = latest[0]
            return f"azureml:{item.dataset}:{version}", kinds.get(item.dataset, "file")

        def code(step: Step) -> str:
            if not upload:
                return str(step.source_dir)
            return self._upload_code(step)

        return Refs(environment, dataset, self._datastore_name, code)

    def _upload_code(self, step: Step) -> str:
        """The step's snapshot on the default datastore at a content-addressed path, uploaded
        with the deploy's credential like dataset files (never overwritten), registered as a
        code asset version named by that content; its ARM id for the component's ``code:``."""
        from azure.ai.ml.entities._assets import Code

        location = self._blob_location(None)
        with tempfile.TemporaryDirectory(prefix="amlops-code-") as tmp:
            snapshot = Path(tmp) / step.name
            for rel, path in walk_files(step.source_dir):
                target = snapshot / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
            upload = upload_dataset_files(
                snapshot, location, CODE_PATH, self.credential, **self.blob_options
            )
        # A component's code must be a local folder (the SDK would upload it itself, with a SAS
        # the service hands out), a git path or a code asset's ARM id: an https URL is read as
        # a local path (entities/_component/code.py, _get_code_type). Code operations have no
        # public handle on MLClient (1.35.2), hence ``_code``.
        code = self.client._code.create_or_update(
            Code(
                name=CODE_ASSET,
                version=upload.path.rsplit("/", 1)[1],
                path=f"{location.account_url}/{location.container}/{upload.path}",
            )
        )
        return f"azureml:{code.id}"

    def _compile(self, pipeline: Pipeline, *, upload: bool) -> Compiled:
        return compile_pipeline(
            pipeline,
            compute=self.config.compute,
            default_environment=self._default_environment(),
            refs=self._refs(upload),
            component_file=lambda s: f"./components/{s.name}.yml",
        )

    def _fingerprint(self, pipeline: Pipeline, compiled: Compiled) -> str:
        """The spec with its step folders, plus what the published component (``compiled``
        without uploads) pins: compute, environment versions and dataset versions (v2
        resolves ``latest`` at publish)."""
        pins = {
            "compute": self.config.compute,
            "environments": sorted({c.get("environment") or c["task"]["environment"]
                                    for c in compiled.components.values()}),
            "datasets": sorted(
                str(v.get("path")) for n in compiled.job["jobs"].values()
                for v in n["inputs"].values() if isinstance(v, dict)
            ),
        }  # fmt: skip
        spec = document_fingerprint(pipeline_document(pipeline))
        return "amlops-" + hash_text(spec, repr(pins))[:20]

    def _default_component(self, pipeline: Pipeline) -> str | None:
        name = endpoint_name(pipeline.name)
        endpoint = _get_or_none(lambda: self.client.batch_endpoints.get(name))
        deployment = default_deployment(endpoint) if endpoint else None
        if not deployment:
            return None
        d = self.client.batch_deployments.get(name=deployment, endpoint_name=name)
        # get() returns a plain BatchDeployment, which drops the component id
        # (entities/_deployment/batch_deployment.py, _from_rest_object); the fingerprint tag
        # names the pipeline component version publish registered for it.
        fp = (d.tags or {}).get(FINGERPRINT_TAG)
        if not fp:
            return None
        return f"azureml:{component_name(pipeline.name, 'pipeline')}:{version_label(fp)}"

    def _latest(self, operations: Any, name: str) -> tuple[int, str] | None:
        """(version, fingerprint tag) of the newest numbered version, None when there is none."""
        found = _get_or_none(lambda: list(operations.list(name=name)))
        best = None
        for asset in found or []:
            if str(asset.version).isdigit() and (best is None or int(asset.version) > best[0]):
                best = (int(asset.version), (asset.tags or {}).get(FINGERPRINT_TAG, ""))
        return best

    def _check_node_counts(self, pipeline: Pipeline) -> None:
        if self.max_nodes is None:
            return
        for step in pipeline.steps:
            count = step.requested_nodes()
            if count is not None and count > self.max_nodes:
                raise ConfigError(
                    f"pipeline {pipeline.name!r}: step {step.name!r} node_count {count} is more "
                    f"than the compute cluster allows ({self.max_nodes})"
                )


def default_deployment(endpoint: Any) -> str | None:
    """The endpoint's default deployment name. A ``BatchEndpoint`` read from the service holds
    the REST ``BatchEndpointDefaults`` (keyed ``deploymentName`` as a mapping), one built here a
    dict keyed ``deployment_name`` (entities/_endpoint/batch_endpoint.py)."""
    defaults = endpoint.defaults
    if defaults is None:
        return None
    if isinstance(defaults, dict):
        return defaults.get("deployment_name")
    return getattr(defaults, "deployment_name", None)


def version_label(fp: str) -> str:
    """A component version from the pipeline's fingerprint: the same pipeline, the same one."""
    return fp.removeprefix("amlops-")


def load_compiled(compiled: Compiled, folder: Path, *, pipeline_component: bool = False) -> Any:
    """The compiled documents written under ``folder`` and loaded with azure-ai-ml's loaders."""
    from azure.ai.ml import load_component, load_job

    (folder / "components").mkdir(parents=True, exist_ok=True)
    for step, doc in compiled.components.items():
        (folder / "components" / f"{step}.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    if pipeline_component:
        path = folder / "pipeline-component.yml"
        path.write_text(yaml.safe_dump(compiled.pipeline_component, sort_keys=False))
        return load_component(path)
    path = folder / "pipeline.yml"
    path.write_text(yaml.safe_dump(compiled.job, sort_keys=False))
    return load_job(path)


# The wire names of data inputs in a batch job body (_schema/_deployment/batch/batch_job.py).
JOB_INPUT_TYPES = {"uri_folder": "UriFolder", "uri_file": "UriFile", "mltable": "MLTable"}


def rest_body(compiled: Compiled) -> dict[str, Any]:
    """What a REST caller posts to the endpoint's invocation URL (with an Entra token for
    https://ml.azure.com), shaped as azure-ai-ml's ``batch_endpoints.invoke`` sends it: every
    input of the published pipeline, its default as the example value. A Param fixed at
    publish is no input there, so it is not offered."""
    inputs: dict[str, Any] = {}
    for name, value in compiled.job["inputs"].items():
        if isinstance(value, dict):
            inputs[name] = {"jobInputType": JOB_INPUT_TYPES[value["type"]], "uri": value["path"]}
        else:
            inputs[name] = {"jobInputType": "Literal", "value": value}
    return {"properties": {"inputData": inputs}}


def preflight(
    client: Any, coords: Coordinates, config: Config, pipelines: Sequence[Pipeline]
) -> int:
    """Workspace, compute cluster, datastores, node counts, read through azure-ai-ml; the
    cluster's max nodes. Read-only; the first failure is one line and nothing is changed."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    where = f"workspace {coords.workspace_name!r} (resource group {coords.resource_group!r})"
    try:
        client.workspaces.get(coords.workspace_name)
    except ClientAuthenticationError as exc:
        raise AmlopsError(f"cannot authenticate to Azure: {first_line(exc)}") from None
    except HttpResponseError as exc:
        raise AmlopsError(f"{where}: {first_line(exc)}") from None
    try:
        compute = client.compute.get(coords.compute)
    except HttpResponseError as exc:
        raise AmlopsError(
            f"compute cluster {coords.compute!r} in {where}: {first_line(exc)} "
            "(compute.default in config)"
        ) from None
    if getattr(compute, "type", None) != "amlcompute":
        raise AmlopsError(f"compute {coords.compute!r} is not an AmlCompute cluster")
    max_nodes = int(getattr(compute, "max_instances", 0) or 0)
    names = {
        (ds.datastore, f"{config.file}: datasets.{ds.name}")
        for ds in config.datasets
        if ds.datastore
    }
    for p in pipelines:
        for param in p.parameters:
            if isinstance(param, DataPathParam):
                names.add((param.datastore, f"pipeline {p.name!r}: {param.name}"))
        for step in p.steps:
            count = step.requested_nodes()
            if count is not None and count > max_nodes:
                raise ConfigError(
                    f"pipeline {p.name!r}: step {step.name!r} node_count {count} is more than "
                    f"compute cluster {coords.compute!r} allows (max_instances {max_nodes})"
                )
    for name, key in sorted(names):
        actual = coords.datastore(name)
        try:
            client.datastores.get(actual)
        except HttpResponseError as exc:
            raise AmlopsError(f"{key}: datastore {actual!r}: {first_line(exc)}") from None
    return max_nodes


def _get_or_none(fetch: Any) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return fetch()
    except ResourceNotFoundError:
        return None


__all__ = ["AzureMLv2Backend", "preflight"]
