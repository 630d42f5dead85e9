"""A notebook API in Azure ML v1's words, over the local workspace.

    from amlops import Workspace
    ws = Workspace.from_config(env="local")
    run = ws.submit("train", parameters={"n_estimators": 300})
    run.wait_for_completion(show_output=True)
    run.get_status(), run.get_metrics(), run.outputs

``submit`` runs the repository's current definition of the pipeline, as ``deploy.py --stage
run`` does, in a thread of this process; the run is recorded in the workspace like any other
(``amlops runs list`` shows it, SOURCE ``SDK``).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlops.errors import ConfigError

TERMINAL = ("Completed", "Failed", "Canceled")


@dataclass
class Workspace:
    """A configured local workspace (``config/<env>.yml``), as v1's ``Workspace``."""

    root: Path
    env: str = "local"
    _config: Any = field(default=None, repr=False)

    @classmethod
    def from_config(cls, env: str = "local", path: str | Path | None = None) -> Workspace:
        """The workspace ``config/<env>.yml`` describes; ``path``: the repository root
        (default: this folder or the nearest parent holding ``config/<env>.yml``)."""
        from amlops.config import load_config

        root = Path(path).resolve() if path else _find_root(Path.cwd(), env)
        config = load_config(env, root)
        if config.workspace.backend != "local":
            raise ConfigError(
                f"{config.file}: workspace.backend is {config.workspace.backend}; the notebook "
                "API runs pipelines on the local workspace"
            )
        return cls(root, env, config)

    @property
    def pipelines(self) -> list[str]:
        return [p.name for p in self._config.pipelines]

    def submit(
        self,
        pipeline: str,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
        experiment_name: str | None = None,
    ) -> Run:
        """Queue a run of ``pipeline`` and start it; the Run answers at once."""
        from dataclasses import replace

        from amlops.backends.local.runner import Runner, RunRequest
        from amlops.deploy import build_pipelines

        if pipeline not in self.pipelines:
            known = ", ".join(self.pipelines) or "none"
            raise ConfigError(f"no pipeline {pipeline!r} in {self._config.file} (known: {known})")
        config = replace(self._config, pipelines=(self._config.pipeline(pipeline),))
        [spec] = build_pipelines(config)
        request = RunRequest(
            spec, dict(parameters or {}), regenerate_outputs, experiment=experiment_name
        )
        ws = self._workspace()
        store = ws.open_store()
        try:
            run_id = Runner(ws, store).submit(request)  # checked here: bad input raises now
        finally:
            store.close()
        run = Run(self, run_id)
        run._start(request)
        return run

    def get_run(self, run_id: str) -> Run:
        run = Run(self, run_id)
        run.get_status()  # raises for an unknown id
        return run

    def _workspace(self):
        from amlops.backends.local.workspace import LocalWorkspace

        return LocalWorkspace(self._config.workspace.path)


@dataclass
class Run:
    """A pipeline run, as v1's ``PipelineRun``: status, waiting, metrics, outputs."""

    workspace: Workspace
    id: str
    _log: io.StringIO = field(default_factory=io.StringIO, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _error: BaseException | None = field(default=None, repr=False)

    def _start(self, request) -> None:
        def execute() -> None:
            from amlops.backends.local.runner import Runner

            store = self.workspace._workspace().open_store()
            runner = Runner(self.workspace._workspace(), store, self._log)
            try:
                runner.execute(self.id, request)
            except BaseException as exc:  # noqa: BLE001 (kept for wait_for_completion)
                self._error = exc
            finally:
                store.close()
                if runner.mlflow_record is not None:
                    # wait_for_completion returns once MLflow has the whole run too, so
                    # get_metrics() right after sees every step (its record finishes last).
                    runner.mlflow_record.wait()

        self._thread = threading.Thread(target=execute, name=f"run-{self.id}", daemon=True)
        self._thread.start()

    def get_status(self) -> str:
        return self._row()["status"]

    def wait_for_completion(self, show_output: bool = False, timeout: float | None = None) -> str:
        """Block until the run ends (its status); ``show_output`` prints its progress."""
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = 0
        while True:
            if show_output:
                text = self._log.getvalue()
                sys.stdout.write(text[shown:])
                shown = len(text)
            status = self.get_status()
            if status in TERMINAL and (self._thread is None or not self._thread.is_alive()):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.id} still {status} after {timeout} s")
            time.sleep(0.2)
        if self._error is not None:
            raise self._error
        return status

    @property
    def outputs(self) -> dict[str, dict[str, Path]]:
        """Each step's outputs: step -> output name -> folder."""
        ws = self.workspace._workspace()
        found = {}
        for step in self._steps():
            found[step["step"]] = {k: ws.abs(v) for k, v in json.loads(step["outputs"]).items()}
        return found

    def get_metrics(self) -> dict[str, dict[str, float]]:
        """The metrics each step logged to MLflow: step -> metric -> last value."""
        from amlops.runtime import PIPELINE_RUN_TAG

        ws = self.workspace._workspace()
        if not (ws.root / "mlflow.db").exists():
            return {}
        import os

        from amlops.telemetry import telemetry_off

        telemetry_off(os.environ)
        from amlops.runtime import mlflow_client

        client = mlflow_client(ws.mlflow_lock, ws.mlflow_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        reused = {s["step"]: s["reused_from"] for s in self._steps() if s["reused_from"]}
        found: dict[str, dict[str, float]] = {}
        # A reused step logged nothing in this run: its metrics are the original run's.
        runs = {self.id} | {origin.split("/")[0] for origin in reused.values()}
        for run_id in runs:
            steps = f"tags.`{PIPELINE_RUN_TAG}` = '{run_id}' AND tags.`amlops.kind` = 'step'"
            for run in client.search_runs(experiments, filter_string=steps):
                step = run.info.run_name
                if run_id == self.id or reused.get(step, "").startswith(f"{run_id}/"):
                    found[step] = dict(run.data.metrics)
        return found

    def _row(self):
        ws = self.workspace._workspace()
        store = ws.open_store()
        try:
            row = store.one("SELECT * FROM runs WHERE run_id=?", (self.id,))
        finally:
            store.close()
        if row is None:
            raise ConfigError(f"run {self.id!r} not found (see: amlops runs list)")
        return row

    def _steps(self):
        store = self.workspace._workspace().open_store()
        try:
            return store.all("SELECT * FROM step_runs WHERE run_id=? ORDER BY seq", (self.id,))
        finally:
            store.close()


def _find_root(start: Path, env: str) -> Path:
    for folder in (start, *start.parents):
        if (folder / "config" / f"{env}.yml").is_file():
            return folder
    raise ConfigError(f"no config/{env}.yml in {start} or any folder above it")
