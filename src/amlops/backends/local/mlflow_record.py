"""A local pipeline run's MLflow run, kept by a helper process beside the runner.

Importing mlflow takes seconds, so the runner never does: it starts this module as a
process when a run starts and tells it, one JSON line at a time on its stdin, what happens:

- ``start``: the run's experiment, parameters and tags. The helper creates the pipeline's
  MLflow run (or finds the one a step already created: runtime.pipeline_mlflow_run) and
  logs the parameters, while the first steps run.
- ``step``: a step finished or was reused. Every step gets an MLflow run nested under the
  pipeline's: the one the step's script made (``amlops.runtime.mlflow_run``), else one made
  here with the step's status and times (and a ParallelStep's summary counts as metrics).
  A reused step's nested run is tagged ``amlops.reused_from`` with the step run it reused
  and ``amlops.reused_mlflow_run_id`` with that step's MLflow run.
- ``end``: the pipeline's status and end time. The helper ends the MLflow run with them and
  exits. Should the runner die without saying, the closed stdin ends the run as KILLED.

The runner does not wait for the helper: a run whose steps were all reused takes a tenth of
a second, and importing mlflow takes seconds. So the MLflow run may still show RUNNING for
those seconds after the pipeline run has returned; its end time is the pipeline's all the
same. What the helper printed, an error included, is in the run folder's ``mlflow.txt``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from amlops.runtime import MLFLOW_LOCK_VARIABLE, MLFLOW_PARENT_TAG, PIPELINE_RUN_TAG

# The local run's status -> MLflow's RunStatus name (mlflow/entities/run_status.py).
MLFLOW_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}
REUSED_FROM_TAG = "amlops.reused_from"
REUSED_MLFLOW_RUN_TAG = "amlops.reused_mlflow_run_id"
REUSED_STEPS_TAG = "amlops.reused_steps"  # on the pipeline's run: which steps were reused


class MlflowRecord:
    """The runner's handle on the helper process; safe to call from the step threads."""

    def __init__(self, env: dict[str, str], log: Path, busy: Path):
        self._lock = threading.Lock()
        with open(log, "wb") as out, open(busy, "a") as held:
            # A shared lock on ``busy`` the helper inherits and holds until it exits, taken
            # before it starts: wait_for_records() cannot miss a helper about to start.
            fcntl.flock(held, fcntl.LOCK_SH)
            # Its own session: Ctrl-C stops the run's steps, not the record of how it ended.
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                pass_fds=(held.fileno(),),
            )
        self._stdin: IO[bytes] | None = self._proc.stdin

    def start(
        self, run_id: str, experiment: str, parameters: dict[str, Any], tags: dict[str, str]
    ) -> None:
        self._send(
            event="start", run_id=run_id, experiment=experiment, parameters=parameters,
            tags=tags, time=time.time(),
        )  # fmt: skip

    def step(
        self,
        name: str,
        status: str,
        start: float | None,
        end: float | None,
        *,
        reused_from: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        self._send(
            event="step", step=name, status=status, start=start, end=end,
            reused_from=reused_from, summary=summary,
        )  # fmt: skip

    def end(self, status: str, end_time: float) -> None:
        """Say how the run ended; the helper finishes on its own."""
        self._send(event="end", status=status, time=end_time)
        with self._lock:
            if self._stdin is not None:
                self._stdin.close()
                self._stdin = None
        # Reaped in the background while this process lives (a service, a notebook); when it
        # exits first (the CLI), the helper, in its own session, carries on alone.
        threading.Thread(target=self._proc.wait, daemon=True).start()

    def wait(self) -> int:
        """Until MLflow has all of the run (for a caller that reads MLflow next); its exit code."""
        return self._proc.wait()

    def _send(self, **event: Any) -> None:
        line = (json.dumps(event, default=str) + "\n").encode()
        with self._lock:
            if self._stdin is None:
                return
            try:
                self._stdin.write(line)
                self._stdin.flush()
            except OSError:  # the helper died: why is in the run folder's mlflow.txt
                self._stdin = None


def wait_for_records(busy: Path) -> None:
    """Until every MLflow record of a workspace (``busy``: its ``mlflow.records``) has
    finished: for a caller about to read MLflow, or to delete the workspace."""
    if busy.exists():
        with open(busy, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # granted once no helper holds it shared


# --- the helper process ----------------------------------------------------------------------


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


class _Recorder:
    def __init__(self, start: dict[str, Any]):
        from amlops.runtime import pipeline_mlflow_run

        self.run_id = start["run_id"]
        tags = start["tags"]
        self.client, self.experiment_id, self.parent = pipeline_mlflow_run(
            start["experiment"],
            self.run_id,
            git_commit=tags.get("mlflow.source.git.commit"),
            start_time_ms=_ms(start["time"]),
            lock=os.environ.get(MLFLOW_LOCK_VARIABLE),
        )
        self.reused: list[str] = []
        from mlflow.entities import Param, RunTag

        params = [Param(k, _text(v)) for k, v in start["parameters"].items()]
        run_tags = [RunTag(k, v) for k, v in tags.items()]
        self.client.log_batch(self.parent, params=params, tags=run_tags)

    def step(self, event: dict[str, Any]) -> None:
        name, status = event["step"], MLFLOW_STATUS.get(event["status"], "FAILED")
        if event["reused_from"]:
            self._reused(name, event)
            return
        own = self._step_runs(self.run_id, name, parent=self.parent)
        if own:
            for run in own:  # a step killed mid-run leaves its run RUNNING
                if run.info.status == "RUNNING":
                    self.client.set_terminated(run.info.run_id, status, _ms(event["end"]))
            return
        run = self._nested(name, event["start"], {"amlops.kind": "step"})
        summary = event.get("summary") or {}
        numbers = {
            k: v
            for k, v in summary.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if numbers:
            from mlflow.entities import Metric

            when = _ms(event["end"]) or _ms(time.time())
            metrics = [Metric(k, float(v), when, 0) for k, v in numbers.items()]
            self.client.log_batch(run, metrics=metrics)
        self.client.set_terminated(run, status, _ms(event["end"]))

    def _reused(self, name: str, event: dict[str, Any]) -> None:
        origin = event["reused_from"]
        original_run, _, original_step = origin.partition("/")
        tags = {"amlops.kind": "reused", REUSED_FROM_TAG: origin}
        found = self._step_runs(original_run, original_step)
        if found:
            tags[REUSED_MLFLOW_RUN_TAG] = found[0].info.run_id
        run = self._nested(name, event["start"], tags)
        self.client.set_terminated(run, "FINISHED", _ms(event["end"]))
        self.reused.append(name)
        self.client.set_tag(self.parent, REUSED_STEPS_TAG, ",".join(self.reused))

    def _nested(self, name: str, start: float | None, tags: dict[str, str]) -> str:
        tags = {MLFLOW_PARENT_TAG: self.parent, PIPELINE_RUN_TAG: self.run_id, **tags}
        run = self.client.create_run(
            self.experiment_id, start_time=_ms(start), tags=tags, run_name=name
        )
        return run.info.run_id

    def _step_runs(self, pipeline_run_id: str, step: str, parent: str | None = None) -> list:
        """The MLflow runs a step's script made in that pipeline run, in any experiment."""
        where = (
            f"tags.`{PIPELINE_RUN_TAG}` = '{pipeline_run_id}' AND tags.`amlops.kind` = 'step'"
            f" AND attributes.run_name = '{step}'"
        )
        if parent:
            where += f" AND tags.`{MLFLOW_PARENT_TAG}` = '{parent}'"
            experiments = [self.experiment_id]
        else:
            experiments = [e.experiment_id for e in self.client.search_experiments()]
        return list(self.client.search_runs(experiments, filter_string=where))

    def end(self, status: str, end_time: float | None) -> None:
        # Nested runs still running (a step stopped by a cancel) end with the pipeline.
        running = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{MLFLOW_PARENT_TAG}` = '{self.parent}'"
            " AND attributes.status = 'RUNNING'",
        )
        for run in running:
            self.client.set_terminated(run.info.run_id, "KILLED", _ms(end_time))
        self.client.set_terminated(self.parent, status, _ms(end_time))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def main() -> int:
    lines = iter(sys.stdin.readline, "")
    first = next(lines, "")
    if not first:
        return 0  # the runner stopped before the run started
    from amlops.telemetry import telemetry_off

    # Bookkeeping: seconds of importing mlflow that should not slow the run's own steps (or
    # the runner) when the cores are busy.
    os.nice(10)
    telemetry_off(os.environ)
    recorder = _Recorder(json.loads(first))
    for line in lines:
        event = json.loads(line)
        if event["event"] == "step":
            recorder.step(event)
        elif event["event"] == "end":
            recorder.end(MLFLOW_STATUS.get(event["status"], "FAILED"), event["time"])
            return 0
    recorder.end("KILLED", time.time())  # the runner went away without saying how it ended
    return 0


if __name__ == "__main__":
    sys.exit(main())
