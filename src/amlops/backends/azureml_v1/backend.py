"""The Azure ML v1 backend: the deploy stages over a real (or dry-run) workspace."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from amlops.backends.azure_auth import deploy_credential
from amlops.backends.azureml_v1 import auth, preflight
from amlops.backends.azureml_v1.compile import V1_STEP_KINDS, compile_pipeline
from amlops.backends.azureml_v1.publish import find_endpoint, fingerprint, publish_pipeline
from amlops.backends.azureml_v1.register import (
    AssetService,
    WorkspaceAssets,
    register_datasets,
    register_environments,
)
from amlops.backends.azureml_v1.schedules import Target, reconcile
from amlops.backends.base import (
    CREATED,
    UNCHANGED,
    UPDATED,
    Change,
    NoRunStage,
)
from amlops.backends.coordinates import Coordinates, resolve, terraform_option, terraform_outputs
from amlops.backends.dataset_blobs import upload_source
from amlops.backends.runtime_wheel import steps_needing_runtime
from amlops.backends.sdk_errors import first_line
from amlops.backends.terraform_outputs import (
    TerraformSource,
)
from amlops.config import Config, DatasetConfig, EnvironmentConfig, ScheduleConfig
from amlops.errors import AmlopsError, ConfigError
from amlops.schedule_rules import parameter_kinds
from amlops.spec import DataPathParam, Pipeline

log = logging.getLogger("amlops.azureml_v1")


class AzureMLv1Backend(NoRunStage):
    name = "azureml_v1"
    step_kinds = frozenset(V1_STEP_KINDS)

    def __init__(
        self,
        workspace: Any,
        *,
        config: Config,
        assets: AssetService,
        coordinates: Coordinates | None = None,
        facts: preflight.WorkspaceFacts | None = None,
        workflow_provider: Any = None,
        service_endpoint: str | None = None,
        pipelines: Sequence[Pipeline] = (),
    ):
        """Everything SDK-facing is passed in, so tests can give a dry-run provider.

        ``pipelines`` are this deploy's specs: stages run alone (``--stage schedule``) need
        them, and register uses them to see which environments need this project's runtime.
        """
        self.workspace = workspace
        self.config = config
        self.assets = assets
        self.coordinates = coordinates
        self.facts = facts
        self.workflow_provider = workflow_provider
        self.service_endpoint = service_endpoint
        self._pipelines: dict[str, Pipeline] = {p.name: p for p in pipelines}
        self._compiled: dict[str, tuple[str, Any]] = {}  # name -> (fingerprint, aml pipeline)
        # Versions a --plan's register stage would create: later stages of the same plan
        # fingerprint against them, so the plan shows the endpoint versions a deploy makes.
        self._planned_environments: dict[str, str] = {}

    @classmethod
    def connect(
        cls,
        config: Config,
        *,
        plan: bool,
        terraform: TerraformSource | None = None,
        pipelines: Sequence[Pipeline] = (),
        credential: Any = None,
        mgmt_options: Mapping[str, Any] | None = None,
    ) -> AzureMLv1Backend:
        """Coordinates (Terraform < config < env), credentials, then read-only preflight.

        ``pipelines`` lets preflight check node counts and datastores before any stage runs;
        ``credential`` and ``mgmt_options`` (e.g. an azure-core ``transport``) are for tests.
        """
        from azureml.core import Workspace

        coords = resolve(config, terraform_outputs(config, terraform))
        cred = credential or deploy_credential(config.workspace.auth, coords)
        client = preflight.mgmt_client(cred, coords.subscription_id, **(mgmt_options or {}))
        facts = preflight.preflight(client, coords, needs(config, pipelines))
        try:
            workspace = Workspace(
                coords.subscription_id,
                coords.resource_group,
                coords.workspace_name,
                auth=auth.azureml_auth(cred),
            )
        except Exception as exc:  # azureml raises its own exception tree, often multi-line
            raise AmlopsError(
                f"opening workspace {coords.workspace_name!r} with azureml-core failed: "
                f"{first_line(exc)}"
            ) from None
        backend = cls(
            workspace,
            config=config,
            assets=WorkspaceAssets(workspace, cred),
            coordinates=coords,
            facts=facts,
            pipelines=pipelines,
        )
        return backend

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        options: Mapping[str, Any] | None = None,
    ) -> AzureMLv1Backend:
        """``options``: ``tf_dir`` / ``tf_state`` (--tf-dir, --tf-state) name Terraform."""
        terraform = terraform_option(options)
        return cls.connect(config, plan=plan, terraform=terraform, pipelines=pipelines)

    def close(self) -> None:
        pass  # azureml-core holds no connection to release

    # -- stages -----------------------------------------------------------------------------

    def register_datasets(self, datasets: Sequence[DatasetConfig], *, plan: bool) -> list[Change]:
        where = str(self.config.file)
        return register_datasets(
            datasets,
            self.assets,
            actual_datastore=self._datastore_name,
            materialise=lambda cfg, tmp: upload_source(cfg, tmp, where),
            where=where,
            plan=plan,
        )

    def register_environments(
        self, environments: Sequence[EnvironmentConfig], *, plan: bool
    ) -> list[Change]:
        runtime = steps_needing_runtime(self._pipelines.values(), self._default_environment())
        changes = register_environments(
            environments, self.assets, root=self.config.root, plan=plan, runtime_envs=runtime
        )
        if plan:
            self._planned_environments = {c.name: c.version for c in changes if c.changed}
        return changes

    def build(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]:
        """Fingerprint each pipeline and (not in a plan) compile it with the SDK and validate."""
        changes = []
        for pipeline in pipelines:
            self._pipelines[pipeline.name] = pipeline
            self._check_node_counts(pipeline)
            fp = self._fingerprint(pipeline)
            endpoint = find_endpoint(
                self.workspace, pipeline.name, self.workflow_provider, self.service_endpoint
            )
            published = _default_fingerprint(endpoint)
            action = CREATED if endpoint is None else UNCHANGED if published == fp else UPDATED
            detail: dict[str, Any] = {"fingerprint": fp, "steps": len(pipeline.steps)}
            if not plan:
                aml = self._compile(pipeline, fp)
                errors = aml.validate()
                if errors:
                    raise AmlopsError(f"pipeline {pipeline.name!r} does not validate: {errors[0]}")
            changes.append(Change("pipeline", pipeline.name, action, None, detail))
        return changes

    def publish(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]:
        changes = []
        for pipeline in pipelines:
            self._pipelines[pipeline.name] = pipeline
            self._check_node_counts(pipeline)
            fp = self._fingerprint(pipeline)
            changes.append(
                publish_pipeline(
                    pipeline,
                    fp,
                    lambda p=pipeline, f=fp: self._compile(p, f),
                    workspace=self.workspace,
                    provider=self.workflow_provider,
                    service_endpoint=self.service_endpoint,
                    plan=plan,
                )
            )
        return changes

    def schedule(
        self,
        schedules: Sequence[ScheduleConfig],
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        only: Collection[str] | None = None,
    ) -> list[Change]:
        for p in pipelines:
            self._pipelines[p.name] = p
        in_scope = None
        if only is not None:
            # A schedule targets an endpoint by id: those of the pipelines in scope.
            found = (self._find_endpoint(name) for name in only)
            ids = {e.id for e in found if e is not None}
            in_scope = lambda s: s.target in ids  # noqa: E731
        targets: dict[str, Target] = {}
        for name in sorted({s.pipeline for s in schedules}):
            endpoint = find_endpoint(
                self.workspace, name, self.workflow_provider, self.service_endpoint
            )
            if endpoint is None and not plan:
                continue  # reconcile says "publish first"
            spec = self._pipelines.get(name)
            if spec is None:
                raise AmlopsError(
                    f"schedule stage: pipeline {name!r} was not built in this deploy; "
                    "pass the pipeline specs to connect(pipelines=...)"
                )
            targets[name] = Target(endpoint.id if endpoint else None, parameter_kinds(spec))
        return reconcile(
            schedules,
            workspace=self.workspace,
            targets=targets,
            datastore=lambda n: self.assets.datastore(self._datastore_name(n)),
            actual_datastore=self._datastore_name,
            facts=self.facts,
            where=str(self.config.file),
            provider=self.workflow_provider,
            service_endpoint=self.service_endpoint,
            plan=plan,
            in_scope=in_scope,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _find_endpoint(self, name: str) -> Any:
        return find_endpoint(self.workspace, name, self.workflow_provider, self.service_endpoint)

    def _datastore_name(self, name: str) -> str:
        return self.coordinates.datastore(name) if self.coordinates else name

    def _default_environment(self) -> str | None:
        envs = self.config.environments
        return envs[0].name if envs else None

    def _environment_names(self, pipeline: Pipeline) -> list[str]:
        default = self._default_environment()
        return sorted({n for s in pipeline.steps if (n := s.environment or default)})

    def _fingerprint(self, pipeline: Pipeline) -> str:
        """Bindings v1 pins at publish time: a new environment version means a new pipeline
        version. Datasets consumed as "latest" are resolved at run time, so they do not."""
        from amlops.spec import DatasetInput

        envs = {}
        for name in self._environment_names(pipeline):
            latest = self.assets.latest_environment(name)
            envs[name] = self._planned_environments.get(name) or (latest and latest.version)
        datasets = {}
        for step in pipeline.steps:
            for item in step.all_inputs():
                if isinstance(item, DatasetInput):
                    datasets[item.dataset] = item.version
        datastores = sorted(
            self._datastore_name(p.datastore)
            for p in pipeline.parameters
            if isinstance(p, DataPathParam)
        )
        return fingerprint(
            pipeline,
            {
                "compute": sorted({s.compute or self.config.compute for s in pipeline.steps}),
                "environments": envs,
                "datasets": datasets,
                "datastores": datastores,
            },
        )

    def _compile(self, pipeline: Pipeline, fp: str) -> Any:
        from azureml.exceptions import AzureMLException

        cached = self._compiled.get(pipeline.name)
        if cached and cached[0] == fp:
            return cached[1]
        try:
            aml = compile_pipeline(
                pipeline,
                self.workspace,
                compute=self.config.compute,
                resolve=_MappedResolver(self.assets, self._datastore_name),
                default_environment=self._default_environment(),
                workflow_provider=self.workflow_provider,
                service_endpoint=self.service_endpoint,
                environment_variables=self._job_variables(),
            )
        except (AmlopsError, ConfigError):
            raise
        except (ValueError, TypeError) as exc:
            message = f"pipeline {pipeline.name!r}: Azure ML v1 rejects it: {first_line(exc)}"
            raise ConfigError(message) from None
        except AzureMLException as exc:
            message = f"pipeline {pipeline.name!r}: building it failed: {first_line(exc)}"
            raise AmlopsError(message) from None
        self._compiled[pipeline.name] = (fp, aml)
        return aml

    def _job_variables(self) -> dict[str, str]:
        """What each step's job gets that Azure ML does not tell it: the commit deployed.

        Only compiled pipelines carry it, not their fingerprint: a commit that changes no
        pipeline publishes nothing, and runs keep naming the commit their version came from.
        """
        from amlops.deploy import git_commit

        return {"AMLOPS_GIT_COMMIT": git_commit(self.config.root)}

    def _check_node_counts(self, pipeline: Pipeline) -> None:
        if self.facts is None:
            return
        for step in pipeline.steps:
            count = step.requested_nodes()
            if count is not None:
                if count > self.facts.compute_max_nodes:
                    raise ConfigError(
                        f"pipeline {pipeline.name!r}: step {step.name!r} node_count {count} is "
                        f"more than compute cluster {self.facts.compute!r} allows "
                        f"({self.facts.compute_max_nodes})"
                    )


class _MappedResolver:
    """Resolver whose datastore names go through Terraform's datastore_names map."""

    def __init__(self, assets: AssetService, mapping: Any):
        self._assets = assets
        self._map = mapping

    def datastore(self, name: str) -> Any:
        return self._assets.datastore(self._map(name))

    def dataset(self, name: str, version: str | int) -> Any:
        return self._assets.dataset(name, version)

    def environment(self, name: str) -> Any:
        return self._assets.environment(name)

    def default_datastore(self) -> Any:
        return self._assets.default_datastore()

    def saved(self, dataset: Any) -> Any:
        return self._assets.saved(dataset)

    def compute(self, name: str) -> Any:
        return self._assets.compute(name)


def needs(config: Config, pipelines: Sequence[Pipeline]) -> list[preflight.Need]:
    """What preflight must find: every datastore config or a pipeline names, and node counts."""
    file = config.file
    found: list[preflight.Need] = []
    for ds in config.datasets:
        if ds.datastore:
            found.append(preflight.Need("datastore", ds.datastore, f"{file}: datasets.{ds.name}"))
    for sc in config.schedules:
        if sc.datastore_trigger and sc.enabled:
            found.append(
                preflight.Need(
                    "datastore",
                    sc.datastore_trigger.datastore,
                    f"{file}: schedules.{sc.name}.datastore_trigger",
                )
            )
    for p in pipelines:
        for param in p.parameters:
            if isinstance(param, DataPathParam):
                where = f"pipeline {p.name!r}: {param.name}"
                found.append(preflight.Need("datastore", param.datastore, where))
        for step in p.steps:
            count = step.requested_nodes()
            if count is not None:
                where = f"pipeline {p.name!r}: step {step.name!r}"
                found.append(preflight.Need("node_count", count, where))
    return found


def _default_fingerprint(endpoint: Any) -> str | None:
    if endpoint is None:
        return None
    try:
        return endpoint.get_pipeline().version
    except ValueError:
        return None


__all__ = ["AzureMLv1Backend", "TerraformSource", "needs"]
