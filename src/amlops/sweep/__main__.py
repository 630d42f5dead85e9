"""``python -m amlops.sweep --config JSON``: run one SweepStep (the local runner's command line).

Trials run from the step's one snapshot (this process's working folder), at most
``max_concurrent_runs`` and the cores at once, each with its own output folders and a nested
MLflow run that the trial's own ``mlflow.start_run()`` resumes (MLFLOW_RUN_ID). The primary
metric is read back from MLflow, where the trial logged it, as Azure reads a child run's
metrics; the last logged value is the trial's result, every logged value one interval for the
early termination policy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlops.sweep.policy import due, should_stop
from amlops.sweep.sampling import sampler as make_sampler

POLL_S = 0.2
COMPLETED, FAILED, CANCELED = "Completed", "Failed", "Canceled"


@dataclass
class Trial:
    number: int
    trial_id: str
    parameters: dict[str, Any]
    token: Any
    run_id: str
    folder: Path
    proc: subprocess.Popen | None = None
    start: float = 0.0
    end: float | None = None
    history: list[float] = field(default_factory=list)
    judged: int = 0
    status: str = "Running"
    early_stopped: bool = False
    exit_code: int | None = None

    @property
    def metric(self) -> float | None:
        return self.history[-1] if self.history else None

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.trial_id,
            "number": self.number,
            "parameters": self.parameters,
            "primary_metric": self.metric,
            "status": self.status,
            "early_stopped": self.early_stopped,
            "exit_code": self.exit_code,
            "duration_s": round((self.end or time.time()) - self.start, 3),
            "mlflow_run_id": self.run_id,
        }


def _argument(value: Any) -> str:
    return str(value)


def trial_argv(cfg: dict[str, Any], trial: Trial) -> list[str]:
    """The step's arguments, each output a folder of the trial's own, then ``--<name> <value>``
    per sampled hyperparameter, as HyperDrive appends them."""
    argv = [cfg["script"]]
    for arg in cfg["arguments"]:
        if "output" in arg:
            folder = trial.folder / "outputs" / arg["output"]
            folder.mkdir(parents=True, exist_ok=True)
            argv.append(str(folder))
        else:
            argv.append(arg["value"])
    for name, value in trial.parameters.items():
        argv += [f"--{name}", _argument(value)]
    return argv


class Sweep:
    def __init__(self, cfg: dict[str, Any], client: Any, experiment_id: str, parent_id: str):
        self.cfg, self.client = cfg, client
        self.experiment_id, self.parent_id = experiment_id, parent_id
        self.goal = cfg["primary_metric_goal"]
        self.metric = cfg["primary_metric_name"]
        self.sampler = make_sampler(cfg["sampling"], cfg["space"], cfg["seed"], self.goal)
        total = cfg["max_total_runs"]
        self.slots = max(1, min(cfg["max_concurrent_runs"] or total, os.cpu_count() or 1))
        self.trials: list[Trial] = []
        self.trials_dir = Path(cfg["trials_dir"])

    def _launch(self) -> bool:
        asked = self.sampler.ask()
        if asked is None:
            return False  # a grid smaller than max_total_runs
        token, parameters = asked
        number = len(self.trials)
        # Azure names child runs HD_<parent>_<n>; the parent here is the step's MLflow run.
        trial_id = f"HD_{self.parent_id}_{number}"
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.cfg['step']}_{number}",
            tags={
                "mlflow.parentRunId": self.parent_id,
                "amlops.kind": "trial",
                "amlops.trial": trial_id,
                **{f"amlops.param.{k}": str(v) for k, v in parameters.items()},
            },
        )
        trial = Trial(number, trial_id, parameters, token, run.info.run_id,
                      self.trials_dir / str(number))  # fmt: skip
        trial.folder.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MLFLOW_RUN_ID=trial.run_id, AMLOPS_TRIAL_ID=trial_id)
        argv = [sys.executable, *trial_argv(self.cfg, trial)]
        (trial.folder / "command.json").write_text(json.dumps(argv[1:]))
        with (
            open(trial.folder / "stdout.txt", "wb") as out,
            open(trial.folder / "stderr.txt", "wb") as err,
        ):
            # Same process group as this driver: the runner's cancel (killpg) stops trials too.
            trial.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        trial.start = time.time()
        self.trials.append(trial)
        print(f"sweep: trial {number} started with {parameters}", flush=True)
        return True

    def _history(self, trial: Trial) -> list[float]:
        points = self.client.get_metric_history(trial.run_id, self.metric)
        return [m.value for m in sorted(points, key=lambda m: (m.step, m.timestamp))]

    def _judge(self, trial: Trial) -> None:
        policy = self.cfg["policy"]
        n = len(trial.history)
        if policy is None or n <= trial.judged or not due(n, policy):
            return
        others = [t.history for t in self.trials if t is not trial]
        if not any(len(h) >= n for h in others):
            return  # judged once another trial has reached this interval too
        trial.judged = n
        if should_stop(trial.history, others, policy, self.goal):
            trial.early_stopped = True
            trial.proc.terminate()  # type: ignore[union-attr]
            print(f"sweep: trial {trial.number} stopped early at {n} values", flush=True)

    def _finish(self, trial: Trial, code: int, *, canceled: bool = False) -> None:
        trial.end, trial.exit_code = time.time(), code
        trial.history = self._history(trial)
        if trial.early_stopped or canceled:
            trial.status = CANCELED
        else:
            trial.status = COMPLETED if code == 0 else FAILED
        mlflow_status = {COMPLETED: "FINISHED", FAILED: "FAILED", CANCELED: "KILLED"}
        self.client.set_terminated(trial.run_id, mlflow_status[trial.status])
        ok = trial.status == COMPLETED and trial.metric is not None
        self.sampler.tell(trial.token, trial.metric if ok else None)
        print(
            f"sweep: trial {trial.number} {trial.status} {self.metric}={trial.metric}",
            flush=True,
        )

    def run(self) -> None:
        deadline = time.time() + 60 * self.cfg["max_duration_minutes"]
        running: list[Trial] = []
        exhausted = False
        while True:
            while (
                not exhausted
                and len(running) < self.slots
                and len(self.trials) < self.cfg["max_total_runs"]
                and time.time() < deadline
            ):
                if not self._launch():
                    exhausted = True
                    break
                running.append(self.trials[-1])
            if not running:
                return
            time.sleep(POLL_S)
            late = time.time() >= deadline
            for trial in list(running):
                code = trial.proc.poll()  # type: ignore[union-attr]
                if code is None and late:
                    trial.proc.terminate()  # type: ignore[union-attr]
                    code = trial.proc.wait()  # type: ignore[union-attr]
                    self._finish(trial, code, canceled=True)
                    running.remove(trial)
                    continue
                if code is None:
                    trial.history = self._history(trial)
                    self._judge(trial)
                    continue
                self._finish(trial, code)
                running.remove(trial)
            if late:
                exhausted = True

    def best(self) -> Trial | None:
        done = [t for t in self.trials if t.status == COMPLETED and t.metric is not None]
        if not done:
            return None
        sign = -1 if self.goal == "maximize" else 1
        return min(done, key=lambda t: (sign * t.metric, t.number))  # type: ignore[operator]

    def metrics_document(self) -> dict[str, dict[str, list[float]]]:
        """Every trial's metrics as v1's metrics_output holds them: run id -> name -> values."""
        doc: dict[str, dict[str, list[float]]] = {}
        for t in self.trials:
            keys = sorted(self.client.get_run(t.run_id).data.metrics)
            doc[t.trial_id] = {
                k: [
                    m.value
                    for m in sorted(
                        self.client.get_metric_history(t.run_id, k),
                        key=lambda m: (m.step, m.timestamp),
                    )
                ]
                for k in keys
            }
        return doc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--config":
        print("usage: python -m amlops.sweep --config JSON", file=sys.stderr)
        return 2
    cfg = json.loads(argv[1])
    import mlflow

    from amlops.runtime import mlflow_run

    with mlflow_run({"amlops.sweep": cfg["sampling"]}) as parent:
        client = mlflow.MlflowClient()
        sweep = Sweep(cfg, client, parent.info.experiment_id, parent.info.run_id)
        sweep.run()
        best = sweep.best()
        if best is not None:
            mlflow.log_metric(f"best_{sweep.metric}", best.metric)  # type: ignore[arg-type]
            mlflow.set_tag("amlops.best_trial", best.trial_id)
        metrics = sweep.metrics_document()
    if cfg.get("metrics_output"):
        folder = Path(cfg["metrics_output"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    summary = {
        "sampling": cfg["sampling"],
        "primary_metric": {"name": sweep.metric, "goal": sweep.goal},
        "concurrent_trials": sweep.slots,
        "best_trial": best.trial_id if best else None,
        "best_parameters": best.parameters if best else None,
        "trials": [t.entry() for t in sweep.trials],
    }
    Path(cfg["summary"]).write_text(json.dumps(summary, indent=2))
    if best is None:
        print(
            f"amlops.sweep: error: no trial completed with a {sweep.metric!r} metric logged "
            f"through MLflow (trial logs under {sweep.trials_dir})",
            file=sys.stderr,
        )
        return 1
    for name, target in cfg["outputs"].items():
        shutil.copytree(best.folder / "outputs" / name, target, dirs_exist_ok=True)
    print(f"sweep: best trial {best.number} {sweep.metric}={best.metric} {best.parameters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
