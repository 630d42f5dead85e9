"""Run a pipeline on the local workspace: each step a subprocess, bound and reused as in AML v1."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from amlops.backends.base import RunResult, StepDecision, StepResult
from amlops.backends.local.mlflow_record import MlflowRecord
from amlops.backends.local.reuse import fingerprint, notes, reasons, reuse_key
from amlops.backends.local.step_kinds import Bound, ResolvedInput, command, local_kind
from amlops.backends.local.step_logs import Echo, failure_message
from amlops.backends.local.store import Store
from amlops.backends.local.workspace import LocalWorkspace
from amlops.content import file_hashes, hash_text, hash_tree, snapshot
from amlops.errors import ConfigError
from amlops.runtime import MLFLOW_LOCK_VARIABLE
from amlops.spec import DataPathParam, DatasetInput, InputRef, Param, Pipeline, Step
from amlops.specjson import document_fingerprint, pipeline_document
from amlops.telemetry import telemetry_off

NOT_STARTED, QUEUED, RUNNING = "NotStarted", "Queued", "Running"
COMPLETED, FAILED, CANCELED = "Completed", "Failed", "Canceled"
_NON_WORD = re.compile(r"[~\W]")
# The run-identity variables of an AML job (azureml-core run.py Run._load_scope and
# authentication.py; azureml-mlflow service_context_loader.py) and MLflow's run variables.
_OUTER_JOB = frozenset(
    {
        "AZUREML_ARM_SUBSCRIPTION", "AZUREML_ARM_RESOURCEGROUP", "AZUREML_ARM_WORKSPACE_NAME",
        "AZUREML_ARM_PROJECT_NAME", "AZUREML_RUN_ID", "AZUREML_ROOT_RUN_ID",
        "AZUREML_RUN_TOKEN", "AZUREML_RUN_TOKEN_EXPIRY", "AZUREML_SERVICE_ENDPOINT",
        "AZUREML_DISCOVERY_SERVICE_ENDPOINT", "AZUREML_EXPERIMENT_ID", "AZUREML_WORKSPACE_ID",
        "AZUREML_DATASET_ENVIRONMENT_VARS", "AZUREML_DATASET_FILE_OUTPUTS",
        "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_TOKEN",
    }
)  # fmt: skip
STOP_GRACE_S = 10  # a canceled step gets this long to exit after SIGTERM, then SIGKILL


@dataclass
class _Produced:
    """What a finished (or reused) step hands downstream."""

    fingerprint: str
    outputs: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class _Decision:
    inputs: dict[Any, ResolvedInput]
    fingerprint: str
    original: Any  # the step_runs row it reuses, or None
    record: dict[str, Any]  # {"key", "notes"}: kept with the step run
    why: list[str]


@dataclass(frozen=True)
class _RunState:
    """What every step of one run shares while it executes; read-only, so pool threads can."""

    request: RunRequest
    run_id: str
    run_dir: Path
    values: dict[str, Any]
    env_hashes: dict[str | None, str]
    total: int
    mlflow: MlflowRecord


@dataclass(frozen=True)
class RunRequest:
    pipeline: Pipeline
    parameters: dict[str, Any]
    regenerate_outputs: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    # The experiment the run belongs to, as on Azure: a REST submit names one
    # (ExperimentName); otherwise it is the pipeline's name, as deploy and schedules use.
    experiment: str | None = None


class Cancellation:
    """Cancels a run from any thread: stops the step processes running for it at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            for proc in self._running:
                _stop_group(proc)

    @contextmanager
    def watching(self, proc: subprocess.Popen) -> Iterator[None]:
        """While inside, a cancellation stops ``proc`` (and one already made stops it now)."""
        with self._lock:
            if self._event.is_set():
                _stop_group(proc)
            self._running.add(proc)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(proc)


def _stop_group(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass  # already gone


def new_run_id(pipeline: str) -> str:
    return f"{pipeline}_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(3)}"


def step_run_id(run_id: str, step: str) -> str:
    """A step run's id (its AZUREML_RUN_ID): unique, since step names are unique in a pipeline.

    On Azure a step run has an id of its own, unrelated to its pipeline run's."""
    return f"{run_id}_{step}"


class Runner:
    """Executes one pipeline run; progress lines go to ``progress``."""

    def __init__(
        self,
        ws: LocalWorkspace,
        store: Store,
        progress: TextIO | None = None,
        cancel: Cancellation | None = None,
        max_parallel_steps: int | None = None,
        step_slots: threading.Semaphore | None = None,
    ):
        self.ws = ws
        self.store = store
        self.progress = progress or sys.stderr
        self.cancel = cancel or Cancellation()  # another thread may cancel the run with it
        self.max_parallel_steps = max_parallel_steps or os.cpu_count() or 1
        # Shared by runs executing side by side (the service's): a step process holds one
        # slot while it runs, so all runs together start no more step processes than slots.
        self.step_slots = step_slots or nullcontext()
        self.mlflow_record: MlflowRecord | None = None  # the last run's, once it has started

    def run(self, request: RunRequest) -> RunResult:
        return self.execute(self.submit(request), request)

    def submit(self, request: RunRequest, origin: dict[str, Any] | None = None) -> str:
        """Check the request and record the run as Queued; nothing runs yet."""
        pipeline = request.pipeline
        values = pipeline.resolve_parameters(request.parameters)
        steps = pipeline.ordered_steps()
        # Registered data and data paths are checked before the run exists, so bad input
        # leaves no half-written run behind.
        for step in steps:
            local_kind(step)  # a kind this backend cannot run fails before the run exists
            self._environment_hash(step, self.store)
            for item in step.all_inputs():
                if isinstance(item, DatasetInput):
                    self._dataset_row(item, step, self.store)
                elif isinstance(item, DataPathParam):
                    self._datapath(item, values)
        run_id = new_run_id(pipeline.name)
        version = self._built_version(pipeline)
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, pipeline, pipeline_version, status, parameters,"
                " created_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, pipeline.name, version, QUEUED, json.dumps(values), time.time(),
                 json.dumps(origin or {"type": "SDK"})),
            )  # fmt: skip
            for seq, step in enumerate(steps):
                db.execute(
                    "INSERT INTO step_runs (run_id, step, seq, status) VALUES (?, ?, ?, ?)",
                    (run_id, step.name, seq, NOT_STARTED),
                )
        return run_id

    def _built_version(self, pipeline: Pipeline) -> int | None:
        """The built version of the pipeline (deploy's build stage) whose definition this is;
        None for one never built as it is now. Published versions are built ones, so an
        endpoint's run finds the version its endpoint version froze."""
        fingerprint = document_fingerprint(pipeline_document(pipeline))
        row = self.store.one(
            "SELECT version FROM pipelines WHERE name=? AND fingerprint=?"
            " ORDER BY version DESC LIMIT 1",
            (pipeline.name, fingerprint),
        )
        return None if row is None else row["version"]

    def execute(self, run_id: str, request: RunRequest) -> RunResult:
        """Run a submitted (Queued) run to its end."""
        pipeline = request.pipeline
        values = pipeline.resolve_parameters(request.parameters)
        steps = pipeline.ordered_steps()
        env_hashes = {s.environment: self._environment_hash(s, self.store) for s in steps}
        run_dir = self.ws.runs / run_id
        run_dir.mkdir(parents=True)
        with self.store.transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, start_time=? WHERE run_id=?",
                (RUNNING, time.time(), run_id),
            )
        self._say(f"run {run_id}: {len(steps)} steps")
        mlflow = self.mlflow_record = self._mlflow_record(run_id, run_dir, request, values)
        run = _RunState(request, run_id, run_dir, values, env_hashes, len(steps), mlflow)
        finished: dict[str, StepResult] = {}
        error: str | None = None
        status = COMPLETED
        try:
            failed = self._run_steps(pipeline, steps, run, finished)
            if failed is not None:
                status = failed.status
                error = failure_message(failed.name, failed.exit_code, run_dir / failed.name)
        except KeyboardInterrupt:
            status, error = CANCELED, "canceled by the user"
            raise
        except BaseException as exc:
            status, error = FAILED, f"{type(exc).__name__}: {exc}"
            raise
        finally:
            end_time = time.time()
            with self.store.transaction() as db:
                db.execute(
                    "UPDATE runs SET status=?, error=?, end_time=? WHERE run_id=?",
                    (status, error, end_time, run_id),
                )
            mlflow.end(status, end_time)
        results = [finished.get(s.name) or StepResult(s.name, NOT_STARTED, False) for s in steps]
        self._say(f"run {run_id}: {status}")
        return RunResult(
            pipeline=pipeline.name,
            run_id=run_id,
            status=status,
            parameters=values,
            steps=tuple(results),
            error=error,
            folder=str(run_dir),
        )

    def _mlflow_record(
        self, run_id: str, run_dir: Path, request: RunRequest, values: dict[str, Any]
    ) -> MlflowRecord:
        """Start the run's MLflow run (in a helper process: the runner never imports mlflow)."""
        env = _inherited_environment()
        env.update(
            {
                "MLFLOW_TRACKING_URI": self.ws.mlflow_uri,
                "AMLOPS_MLFLOW_ARTIFACTS": self.ws.mlflow_artifacts.as_uri(),
                MLFLOW_LOCK_VARIABLE: str(self.ws.mlflow_lock),
            }
        )
        telemetry_off(env)
        row = self.store.one("SELECT pipeline_version, origin FROM runs WHERE run_id=?", (run_id,))
        origin = json.loads(row["origin"] or "{}")
        tags = {
            "amlops.pipeline": request.pipeline.name,
            "amlops.run_type": origin.get("type", "SDK"),
        }
        if row["pipeline_version"] is not None:
            tags["amlops.pipeline_version"] = str(row["pipeline_version"])
        for key in ("endpoint", "version", "schedule"):
            if origin.get(key) is not None:
                tags[f"amlops.{key}"] = str(origin[key])
        if request.tags.get("git_commit"):
            tags["mlflow.source.git.commit"] = request.tags["git_commit"]
        record = MlflowRecord(env, run_dir / "mlflow.txt", self.ws.mlflow_records)
        experiment = request.experiment or request.pipeline.name
        record.start(run_id, experiment, values, tags)
        return record

    def _run_steps(
        self,
        pipeline: Pipeline,
        steps: list[Step],
        run: _RunState,
        finished: dict[str, StepResult],
    ) -> StepResult | None:
        """Run each step once its inputs exist, independent ones side by side, as AML does.

        After a failure no step starts; those already running finish, so their outputs can be
        reused by the next run. Returns the first step that did not complete, or None.
        """
        pending = list(steps)
        running: dict[Future, Step] = {}
        failed: StepResult | None = None

        def launch(step: Step) -> int:
            """Take the step off the pending list; its number in start order, for progress."""
            pending.remove(step)
            return len(steps) - len(pending)

        # Written only here, in the coordinating thread; a step gets a copy when it starts,
        # which holds everything it reads (a step starts after all of its producers).
        produced: dict[str, _Produced] = {}

        def in_thread(step: Step, index: int, upstream: dict[str, _Produced]):
            # SQLite connections stay in their thread: a step in the pool opens its own.
            store = Store(self.store.path)
            try:
                return self._run_step(step, index, run, upstream, store)
            finally:
                store.close()

        def record(step: Step, outcome: tuple[StepResult, _Produced]) -> None:
            nonlocal failed
            result, made = outcome
            finished[step.name] = result
            produced[step.name] = made
            if result.status != COMPLETED and failed is None:
                failed = result

        def ready(step: Step) -> bool:
            upstream = [finished.get(u.name) for u in pipeline.upstream(step)]
            return all(r is not None and r.status == COMPLETED for r in upstream)

        with ThreadPoolExecutor(max_workers=self.max_parallel_steps) as pool:
            try:
                while pending or running:
                    startable = [s for s in pending if ready(s)] if failed is None else []
                    if len(startable) == 1 and not running:
                        # A lone step (all of a chain) runs right here: no thread hand-off.
                        lone = startable[0]
                        index = launch(lone)
                        record(lone, self._run_step(lone, index, run, produced, self.store))
                        continue
                    for step in startable[: self.max_parallel_steps - len(running)]:
                        future = pool.submit(in_thread, step, launch(step), dict(produced))
                        running[future] = step
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        record(running.pop(future), future.result())
            except BaseException:
                self.cancel.set()  # Ctrl-C, or a bug: stop every step still running
                raise
        return failed

    def plan(self, request: RunRequest) -> list[tuple[str, str | None]]:
        """(step, run it reuses or None) for each step, as a run now would decide; no writes."""
        pipeline = request.pipeline
        values = pipeline.resolve_parameters(request.parameters)
        produced: dict[str, _Produced] = {}
        decisions: list[StepDecision] = []
        steps = pipeline.ordered_steps()
        for step in steps:
            local_kind(step)  # an unknown kind is an error, not "would run"
        for step in steps:
            try:
                env_hash = self._environment_hash(step, self.store)
                decision = self._decide(step, values, env_hash, produced, request, self.store)
                fingerprint, why = decision.fingerprint, tuple(decision.why)
                origin = _origin(decision.original)
            except ConfigError as exc:
                # Not registered yet (the register stage would create it): this step, and
                # so everything downstream, would run.
                fingerprint, origin, why = secrets.token_hex(16), None, (str(exc),)
            # Downstream steps only need the identity of what this step would produce.
            outputs = {o.name: Path(o.name) for o in step.all_outputs()}
            produced[step.name] = _Produced(fingerprint, outputs)
            decisions.append(StepDecision(step.name, origin, why))
        return decisions

    # --- one step --------------------------------------------------------------------------

    def _run_step(
        self,
        step: Step,
        index: int,
        run: _RunState,
        produced: dict[str, _Produced],
        store: Store,
    ) -> tuple[StepResult, _Produced]:
        """Run (or reuse) one step, writing through ``store``, a connection of this thread."""
        run_id, values, request = run.run_id, run.values, run.request
        step_dir = run.run_dir / step.name
        decision = self._decide(
            step, values, run.env_hashes[step.environment], produced, request, store
        )
        inputs, fingerprint, original = decision.inputs, decision.fingerprint, decision.original
        record, why = json.dumps(decision.record, default=str), json.dumps(decision.why)
        prefix = f"[{index}/{run.total}] {step.name}"

        if original is not None:
            outputs = {k: self.ws.abs(v) for k, v in json.loads(original["outputs"]).items()}
            origin = _origin(original)
            with store.transaction() as db:
                now = time.time()
                db.execute(
                    "UPDATE step_runs SET status=?, fingerprint=?, reused_from=?, outputs=?,"
                    " summary=?, start_time=?, end_time=?, exit_code=0, reuse_key=?, why=?"
                    " WHERE run_id=? AND step=?",
                    (
                        COMPLETED, fingerprint, origin, original["outputs"],
                        original["summary"], now, now, record, why, run_id, step.name,
                    ),
                )  # fmt: skip
            self._say(f"{prefix}: reused from {origin}")
            run.mlflow.step(step.name, COMPLETED, now, now, reused_from=origin)
            summary = json.loads(original["summary"]) if original["summary"] else None
            result = StepResult(
                step.name, COMPLETED, True, origin, 0, 0.0, summary=summary,
                why=tuple(decision.why),
            )  # fmt: skip
            return result, _Produced(fingerprint, outputs)

        snapshot(step.source_dir, step_dir / "snapshot")
        outputs = {o.name: step_dir / "outputs" / o.name for o in step.all_outputs()}
        for folder in outputs.values():
            folder.mkdir(parents=True)
        bound = Bound(values, inputs, outputs, step_dir)
        argv = command(step, bound)
        # Exactly what the step's process was given, next to its logs: for the user reading
        # why a step did what it did, and for the tests comparing bindings with Azure's.
        (step_dir / "command.json").write_text(json.dumps(argv[1:]))
        with self.step_slots:  # NotStarted until a slot is free
            start = time.time()
            with store.transaction() as db:
                db.execute(
                    "UPDATE step_runs SET status=?, fingerprint=?, start_time=?, folder=?,"
                    " reuse_key=?, why=? WHERE run_id=? AND step=?",
                    (
                        RUNNING, fingerprint, start, self.ws.rel(step_dir), record, why, run_id,
                        step.name,
                    ),
                )  # fmt: skip
            self._say(f"{prefix}: running")
            job_env = self._job_environment(step, bound, run_id, request)
            exit_code = self._spawn(argv, step_dir, step, run_id, job_env, store)
        end = time.time()
        status = COMPLETED if exit_code == 0 else FAILED
        summary_file = bound.summary_file
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
        rel_outputs = {k: self.ws.rel(v) for k, v in outputs.items()}
        with store.transaction() as db:
            db.execute(
                "UPDATE step_runs SET status=?, exit_code=?, end_time=?, outputs=?, summary=?"
                " WHERE run_id=? AND step=?",
                (
                    status, exit_code, end, json.dumps(rel_outputs),
                    json.dumps(summary) if summary else None, run_id, step.name,
                ),
            )  # fmt: skip
        self._say(f"{prefix}: {status} in {end - start:.2f} s")
        run.mlflow.step(step.name, status, start, end, summary=summary)
        result = StepResult(
            step.name, status, False, None, exit_code, round(end - start, 3),
            str(step_dir / "stderr.txt"), summary, tuple(decision.why),
        )  # fmt: skip
        return result, _Produced(fingerprint, outputs)

    def _job_environment(
        self, step: Step, bound: Bound, run_id: str, request: RunRequest
    ) -> dict[str, str]:
        """The variables an Azure ML v1 step job has, with this workspace's values.

        Only a subset of AML's run variables: Run.get_context() goes online (and fails
        without the service) once all of AZUREML_ARM_SUBSCRIPTION, AZUREML_RUN_ID,
        AZUREML_ARM_RESOURCEGROUP, AZUREML_ARM_WORKSPACE_NAME, AZUREML_ARM_PROJECT_NAME,
        AZUREML_RUN_TOKEN and AZUREML_SERVICE_ENDPOINT are set (azureml-core run.py,
        Run._load_scope); with the ARM, token and endpoint ones missing it stays an
        _OfflineRun, as in a script run by hand.
        """
        experiment = request.experiment or request.pipeline.name
        env = {
            # Whoever of this step and the run's MLflow record comes first creates the
            # pipeline's MLflow run under this lock (runtime.pipeline_mlflow_run).
            MLFLOW_LOCK_VARIABLE: str(self.ws.mlflow_lock),
            # Run._load_scope: the step's own run id and its experiment.
            "AZUREML_RUN_ID": step_run_id(run_id, step.name),
            "AZUREML_ARM_PROJECT_NAME": experiment,
            "MLFLOW_TRACKING_URI": self.ws.mlflow_uri,
            "MLFLOW_EXPERIMENT_NAME": experiment,
        }
        # A PipelineParameter a step uses is declared as AML_PARAMETER_<name>, non-word
        # characters as "_" (pipeline-core graph.py, ParamDef._param_name_to_env_variable).
        for p in step.params():
            if isinstance(p, Param):
                env["AML_PARAMETER_" + _NON_WORD.sub("_", p.name)] = bound(p)
        # A DatasetConsumptionConfig input is delivered to the variable named after it
        # (azureml-core runconfig.py, Data.create: environment_variable_name=data.name);
        # AZUREML_DATASET_ENVIRONMENT_VARS lists them as name:mode (run.py, InputDatasets).
        consumed = []
        for item, resolved in bound.inputs.items():
            if isinstance(item, DatasetInput):
                name, mode = item.input_name, item.mode
            elif isinstance(item, InputRef):
                name, mode = item.name, "mount"  # OutputFileDatasetConfig.as_input's mode
            else:
                continue  # a DataPathParam is a DataPath binding, not a dataset input
            env[name] = str(resolved.path)
            consumed.append(f"{name}:{mode}")
        if consumed:
            env["AZUREML_DATASET_ENVIRONMENT_VARS"] = ",".join(consumed)
        # An OutputFileDatasetConfig is the folder in the variable named after it; the
        # names are listed in AZUREML_DATASET_FILE_OUTPUTS (run.py, OutputDatasets).
        for name, folder in bound.outputs.items():
            env[name] = str(folder)
        if bound.outputs:
            env["AZUREML_DATASET_FILE_OUTPUTS"] = ";".join(bound.outputs)
        # Azure has no variable for these; amlops.runtime reads them here and finds the
        # same facts on Azure elsewhere (see its docstring).
        datasets = {
            i.dataset: r.dataset_version
            for i, r in bound.inputs.items()
            if isinstance(i, DatasetInput)
        }
        env.update(
            {
                "AMLOPS_RUN_ID": run_id,  # the pipeline run: on Azure, the MLflow parent
                "AMLOPS_PIPELINE": request.pipeline.name,
                "AMLOPS_STEP_NAME": step.name,
                "AMLOPS_STEP_LOG_DIR": str(bound.log_dir),
                "AMLOPS_WORKSPACE": str(self.ws.root),
                "AMLOPS_MLFLOW_ARTIFACTS": self.ws.mlflow_artifacts.as_uri(),
                "AMLOPS_DATASETS": json.dumps(datasets),
            }
        )
        commit = request.tags.get("git_commit")
        if commit:
            # On Azure, compile.py puts the same variable in each step's runconfig.
            env["AMLOPS_GIT_COMMIT"] = commit
        return env

    def _spawn(
        self,
        argv: list[str],
        step_dir: Path,
        step: Step,
        run_id: str,
        job_env: dict[str, str],
        store: Store,
    ) -> int:
        env = _inherited_environment()
        env.update(job_env)
        env["PYTHONUNBUFFERED"] = "1"
        telemetry_off(env)
        cwd = step_dir / "snapshot"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
        with (
            open(step_dir / "stdout.txt", "wb") as out,
            open(step_dir / "stderr.txt", "wb") as err,
        ):
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
            )
            try:
                with self.cancel.watching(proc), Echo(step_dir, step.name, self.progress):
                    exit_code = proc.wait()
                if self.cancel.is_set():
                    raise KeyboardInterrupt
                return exit_code
            except KeyboardInterrupt:
                # The step runs in its own session, so its workers die with it.
                _stop_group(proc)
                try:
                    proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    _stop_group(proc, signal.SIGKILL)  # it ignored SIGTERM
                    proc.wait()
                with store.transaction() as db:
                    db.execute(
                        "UPDATE step_runs SET status=?, end_time=? WHERE run_id=? AND step=?",
                        (CANCELED, time.time(), run_id, step.name),
                    )
                raise

    # --- resolution ------------------------------------------------------------------------

    def _decide(
        self,
        step: Step,
        values: dict[str, Any],
        env_hash: str,
        produced: dict[str, _Produced],
        request: RunRequest,
        store: Store,
    ) -> _Decision:
        """The step's bound inputs, its fingerprint, the earlier step run it may reuse, and
        why it runs (or what it reuses)."""
        inputs = {
            i: self._resolve_input(i, values, produced, step, store) for i in step.all_inputs()
        }
        key = reuse_key(step, file_hashes(step.source_dir), values, env_hash, inputs)
        fp = fingerprint(key)
        record = {"key": key, "notes": notes(inputs)}
        original = None
        if step.allow_reuse and not request.regenerate_outputs:
            original = self._reusable(fp, store)
        if original is not None:
            why = [f"nothing it depends on changed since {_origin(original)}"]
        elif not step.allow_reuse:
            why = ["allow_reuse is off: it runs every time"]
        elif request.regenerate_outputs:
            why = ["--regenerate-outputs"]
        else:
            before = self._last_record(request.pipeline.name, step.name, store)
            why = reasons(key, record["notes"], before)
        return _Decision(inputs, fp, original, record, why)

    def _last_record(self, pipeline: str, step: str, store: Store) -> dict[str, Any] | None:
        """The reuse key of the last run of this step of this pipeline, if one was kept."""
        row = store.one(
            "SELECT s.reuse_key FROM step_runs s JOIN runs r ON r.run_id = s.run_id"
            " WHERE r.pipeline=? AND s.step=? AND s.reuse_key IS NOT NULL"
            " ORDER BY s.start_time DESC LIMIT 1",
            (pipeline, step),
        )
        return json.loads(row["reuse_key"]) if row else None

    def _resolve_input(
        self,
        item: InputRef | DatasetInput | DataPathParam,
        values: dict[str, Any],
        produced: dict[str, _Produced],
        step: Step,
        store: Store,
    ) -> ResolvedInput:
        if isinstance(item, InputRef):
            producer = next(
                (p for name, p in produced.items() if item.output.name in p.outputs), None
            )
            if producer is None:  # Pipeline validation makes this unreachable
                raise ConfigError(f"step {step.name!r}: output {item.output.name!r} not produced")
            name = next(n for n, p in produced.items() if p is producer)
            # AML semantics: downstream reuse follows the producer's identity, not its bytes.
            identity = hash_text("output", producer.fingerprint, item.output.name)
            label = f"output {item.output.name} of step {name}"
            return ResolvedInput(producer.outputs[item.output.name], "file", identity, label)
        if isinstance(item, DatasetInput):
            row = self._dataset_row(item, step, store)
            props = json.loads(row["properties"])
            path = self.ws.abs(row["path"])
            identity = hash_text("dataset", row["content_hash"])
            version = str(row["version"])
            label = f"dataset {item.dataset}"
            return ResolvedInput(path, props["kind"], identity, label, f"v{version}", version)
        path = self._datapath(item, values)
        identity = hash_text("datapath", hash_tree(path, respect_ignore=False))
        label = f"data path {item.name}"
        return ResolvedInput(path, item.kind, identity, label, str(values[item.name]))

    def _datapath(self, item: DataPathParam, values: dict[str, Any]) -> Path:
        datastore, _, rel = str(values[item.name]).partition("/")
        path = self.ws.datastore(datastore) / rel
        if not path.exists():
            raise ConfigError(
                f"parameter {item.name!r}: {datastore}/{rel} does not exist in the local "
                f"workspace (looked in {path})"
            )
        return path

    def _dataset_row(self, item: DatasetInput, step: Step, store: Store):
        if item.version == "latest":
            row = store.latest_asset("dataset", item.dataset)
        else:
            row = store.asset("dataset", item.dataset, int(item.version))
        if row is None:
            raise ConfigError(
                f"step {step.name!r}: dataset {item.dataset!r} version {item.version} is not "
                "registered (run: scripts/deploy.py --stage register)"
            )
        return row

    def _environment_hash(self, step: Step, store: Store) -> str:
        if step.environment is None:
            return ""
        row = store.latest_asset("environment", step.environment)
        if row is None:
            raise ConfigError(
                f"step {step.name!r}: environment {step.environment!r} is not registered "
                "(run: scripts/deploy.py --stage register)"
            )
        return row["content_hash"]

    def _reusable(self, fingerprint: str, store: Store):
        rows = store.all(
            "SELECT * FROM step_runs WHERE fingerprint=? AND status=? AND reused_from IS NULL"
            " ORDER BY end_time DESC",
            (fingerprint, COMPLETED),
        )
        for row in rows:
            if all(self.ws.abs(p).is_dir() for p in json.loads(row["outputs"]).values()):
                return row
        return None

    def _say(self, line: str) -> None:
        print(line, file=self.progress, flush=True)


def _inherited_environment() -> dict[str, str]:
    """This process's environment less the identity of a job amlops itself runs in (an AML
    compute instance or job): with the outer run's token and endpoint beside a step's run id,
    Run.get_context() would go online as a run that does not exist, and MLflow would log
    into the outer run."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in _OUTER_JOB and not k.startswith("AML_PARAMETER_")
    }


def _origin(row) -> str | None:
    return f"{row['run_id']}/{row['step']}" if row is not None else None
