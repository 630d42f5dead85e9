"""The local sweep's parallel efficiency: trials per second at 1 and at 2 concurrent trials.

The same grid of 8 trials (each a real subprocess that imports MLflow, logs a few values and
sleeps briefly, as a small training script would) swept on a fresh local workspace with
max_concurrent_runs 1, then 2. Prints trials/s for each and their ratio; 2.0 would be perfect
scaling on two cores. Best of REPEATS, since the machines are shared.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from amlops.backends.local.backend import LocalBackend
from amlops.spec import Output, Pipeline, SearchParam, SweepStep

TRIALS = 8
REPEATS = 2
TRIAL = """
import argparse, time
from pathlib import Path
from amlops.runtime import mlflow_run
p = argparse.ArgumentParser()
p.add_argument("--out", type=Path)
p.add_argument("--x", type=float)
a = p.parse_args()
with mlflow_run():
    import mlflow
    for step in range(1, 4):
        mlflow.log_metric("score", -((a.x - 0.3) ** 2) * step, step=step)
        time.sleep(0.2)
(a.out / "x.txt").write_text(str(a.x))
"""


def sweep_seconds(concurrent: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "trial").mkdir()
        (root / "trial" / "main.py").write_text(TRIAL)
        backend = LocalBackend(root / "ws")
        # MLflow creates its SQLite schema on first use: not part of what a sweep costs.
        import mlflow

        mlflow.set_tracking_uri(backend.ws.mlflow_uri)
        mlflow.MlflowClient().search_experiments()
        pipeline = Pipeline(
            "bench",
            [
                SweepStep(
                    name="sweep",
                    source_dir=root / "trial",
                    arguments=["--out", Output("out")],
                    search_space=[SearchParam("x", "choice", tuple(i / 10 for i in range(TRIALS)))],
                    sampling="grid",
                    primary_metric_name="score",
                    max_total_runs=TRIALS,
                    max_concurrent_runs=concurrent,
                )
            ],
        )
        start = time.perf_counter()
        result = backend.run(pipeline)
        elapsed = time.perf_counter() - start
        backend.close()
        if result.status != "Completed":
            raise SystemExit(f"sweep failed: {result.error}")
        return elapsed


def main() -> int:
    rates = {}
    for concurrent in (1, 2):
        best = min(sweep_seconds(concurrent) for _ in range(REPEATS))
        rates[concurrent] = TRIALS / best
        print(f"{concurrent} concurrent: {rates[concurrent]:.2f} trials/s ({best:.1f} s)")
    print(f"speed-up at 2 concurrent trials: {rates[2] / rates[1]:.2f}x (2.00x is perfect)")
    print(f"parallel efficiency: {rates[2] / rates[1] / 2:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
