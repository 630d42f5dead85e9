"""The local backend: Azure ML v1 semantics on a workspace folder."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from amlops.backends.base import STAGES, Change, RunResult, StepDecision
from amlops.backends.local import endpoints
from amlops.backends.local.assets import register_dataset, register_environment
from amlops.backends.local.models import registered_models
from amlops.backends.local.runner import Runner, RunRequest
from amlops.backends.local.schedules import reconcile as reconcile_schedules
from amlops.backends.local.step_kinds import LOCAL_STEP_KINDS
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import LocalWorkspace
from amlops.config import Config, DatasetConfig, EnvironmentConfig, ScheduleConfig
from amlops.policy import decide_version
from amlops.schedule_rules import parameter_kinds
from amlops.spec import Pipeline
from amlops.specjson import document_fingerprint, pipeline_document


class LocalBackend:
    name = "local"
    stages = STAGES
    step_kinds = frozenset(LOCAL_STEP_KINDS)

    def __init__(
        self,
        root: Path,
        *,
        plan: bool = False,
        progress: TextIO | None = None,
        service_url: str = "http://127.0.0.1:8765",
        config_file: str = "config",
    ):
        self.ws = LocalWorkspace(root)
        self.service_url = service_url
        self.config_file = config_file
        self._published: dict[str, Pipeline] = {}
        self.plan_only = plan
        self.progress = progress or sys.stderr
        # --plan never creates the workspace: an absent one reads as empty.
        if plan and not self.ws.exists():
            self.store = Store(None)
        else:
            self.store = self.ws.open_store()

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        options: Mapping[str, Any] | None = None,
    ) -> LocalBackend:
        return cls(
            config.workspace.path,
            plan=plan,
            service_url=config.workspace.service_url,
            config_file=str(config.file),
        )

    def close(self) -> None:
        self.store.close()

    # --- register ----------------------------------------------------------------------------

    def register_datasets(self, datasets: Sequence[DatasetConfig], *, plan: bool) -> list[Change]:
        return [
            register_dataset(self.ws, self.store, ds, plan=plan, where=ds.where or ds.name)
            for ds in datasets
        ]

    def register_environments(
        self, environments: Sequence[EnvironmentConfig], *, plan: bool
    ) -> list[Change]:
        return [register_environment(self.ws, self.store, e, plan=plan) for e in environments]

    # --- build ---------------------------------------------------------------------------------

    def build(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]:
        """Record each pipeline's definition; a new version only when it changed."""
        changes = []
        for pipeline in pipelines:
            document = pipeline_document(pipeline)
            fingerprint = document_fingerprint(document)
            change = decide_version("pipeline", pipeline.name, fingerprint, self._latest(pipeline))
            if plan or not change.changed:
                changes.append(change)
                continue
            with self.store.transaction() as db:  # re-read under the write lock: no races
                change = decide_version(
                    "pipeline", pipeline.name, fingerprint, self._latest(pipeline)
                )
                if change.changed:
                    db.execute(
                        "INSERT INTO pipelines VALUES (?, ?, ?, ?, ?)",
                        (
                            pipeline.name, int(change.version), fingerprint,
                            json.dumps(document), time.time(),
                        ),
                    )  # fmt: skip
            changes.append(change)
        return changes

    def _latest(self, pipeline: Pipeline) -> tuple[int, str] | None:
        row = self.store.latest_pipeline(pipeline.name)
        return None if row is None else (row["version"], row["fingerprint"])

    # --- run -----------------------------------------------------------------------------------

    def run(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
        tags: dict[str, str] | None = None,
    ) -> RunResult:
        request = RunRequest(pipeline, dict(parameters or {}), regenerate_outputs, tags or {})
        return Runner(self.ws, self.store, self.progress).run(request)

    def plan_run(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
    ) -> list[StepDecision]:
        request = RunRequest(pipeline, dict(parameters or {}), regenerate_outputs)
        return Runner(self.ws, self.store, self.progress).plan(request)

    # --- publish and schedule -----------------------------------------------------------------

    def publish(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]:
        """Publish each pipeline behind its endpoint; a new version only when it changed."""
        changes = []
        for pipeline in pipelines:
            self._published[pipeline.name] = pipeline
            changes.append(
                endpoints.publish(
                    self.ws, self.store, pipeline, base_url=self.service_url, plan=plan
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
        """Reconcile the configured schedules with the workspace's, by name (``only``: just
        those of these pipelines; see the Backend protocol).

        Parameters are checked against what each schedule will run: the version this deploy
        published, else the endpoint's default version (``pipelines`` is not needed locally).
        """
        # A schedule runs its endpoint's default version: check parameters against that.
        kinds = {name: parameter_kinds(p) for name, p in self._published.items()}
        for name in {sc.pipeline for sc in schedules} - set(kinds):
            try:
                pipeline, _ = endpoints.published(self.ws, self.store, name)
            except endpoints.NotPublished:
                continue  # reconcile says "publish first"
            kinds[name] = parameter_kinds(pipeline)
        return reconcile_schedules(
            self.ws, self.store, schedules, kinds, where=self.config_file, plan=plan, only=only
        )

    # --- queries -------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Registered models from the MLflow registry, newest version first."""
        return registered_models(self.ws)
