"""What the local runner costs over running the step scripts by hand.

A 5-step chain of real subprocess steps, each reading the previous step's small file and
writing its own, measured in one run on the same machine:

- by hand: the five scripts run one after another with subprocess, nothing else;
- amlops, fresh: the same steps as a pipeline on a new local workspace (snapshot, bind,
  fingerprint, SQLite records, captured logs);
- amlops, all reused: the same pipeline again, every step reused;
- amlops, all reused, cold: that rerun as a new process, interpreter start-up included
  (compare: `dvc repro` with nothing to do took 0.58 s on these machines).

Prints per-step overhead and ratios; best of several repeats, since the machines are shared.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 5
REPEATS = 5
STEP_SCRIPT = """\
import sys
from pathlib import Path
src, out = sys.argv[1], Path(sys.argv[2])
text = (Path(src) / "data.txt").read_text() if src != "-" else "start"
(out / "data.txt").write_text(text + " +step")
"""

RERUN = """\
import sys, time
start = time.perf_counter()
sys.path.insert(0, {bench!r})
from local_runner import pipeline
from amlops.backends.local.backend import LocalBackend
import io
from pathlib import Path
result = LocalBackend(Path({ws!r}), progress=io.StringIO()).run(pipeline({root!r}))
assert all(s.reused for s in result.steps)
"""


def make_steps(root: Path) -> None:
    for i in range(STEPS):
        folder = root / "steps" / f"s{i}"
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(STEP_SCRIPT)


def pipeline(root: str):
    from amlops.spec import Output, Pipeline, ScriptStep

    root_path = Path(root)
    steps, previous = [], "-"
    for i in range(STEPS):
        out = Output(f"o{i}")
        steps.append(
            ScriptStep(
                name=f"s{i}",
                source_dir=root_path / "steps" / f"s{i}",
                script="main.py",
                arguments=[previous, out],
            )
        )
        previous = out.as_input()
    return Pipeline("bench", steps)


def by_hand(root: Path) -> float:
    outs = [root / "by_hand" / f"o{i}" for i in range(STEPS)]
    for out in outs:
        out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    previous = "-"
    for i, out in enumerate(outs):
        script = root / "steps" / f"s{i}" / "main.py"
        subprocess.run([sys.executable, str(script), previous, str(out)], check=True)
        previous = str(out)
    return time.perf_counter() - start


def main() -> None:
    import io

    from amlops.backends.local.backend import LocalBackend
    from amlops.backends.local.mlflow_record import wait_for_records

    bench_dir = str(Path(__file__).resolve().parent)
    hand, fresh, reused, cold = [], [], [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_steps(root)
            hand.append(by_hand(root))
            backend = LocalBackend(root / "ws", progress=io.StringIO())
            start = time.perf_counter()
            result = backend.run(pipeline(str(root)))
            fresh.append(time.perf_counter() - start)
            assert result.status == "Completed", result.error
            # Each run's MLflow record finishes after it returns (the runner does not wait for
            # mlflow's import): the next figure starts once it has ended.
            wait_for_records(backend.ws.mlflow_records)
            start = time.perf_counter()
            backend.run(pipeline(str(root)))
            reused.append(time.perf_counter() - start)
            wait_for_records(backend.ws.mlflow_records)
            backend.close()
            code = RERUN.format(bench=bench_dir, ws=str(root / "ws"), root=str(root))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            cold.append(time.perf_counter() - start)
            wait_for_records(backend.ws.mlflow_records)  # before the clean-up

    best = {
        k: min(v) for k, v in (("hand", hand), ("fresh", fresh), ("reused", reused), ("cold", cold))
    }
    median = {k: statistics.median(v) for k, v in (("hand", hand), ("fresh", fresh))}
    per_step_ms = (best["fresh"] - best["hand"]) / STEPS * 1000
    print(f"{STEPS}-step chain, best of {REPEATS} (median in brackets)")
    print(f"  by hand                 {best['hand']:.3f} s  [{median['hand']:.3f}]")
    print(f"  amlops, fresh           {best['fresh']:.3f} s  [{median['fresh']:.3f}]")
    print(f"  amlops, all reused      {best['reused']:.3f} s")
    print(f"  amlops, reused, cold    {best['cold']:.3f} s  (new process, start-up included)")
    print(f"  runner overhead         {per_step_ms:.1f} ms per step  (budget: 30 ms)")
    print(f"  fresh / by hand         {best['fresh'] / best['hand']:.2f}x")
    print(f"  reused cold / by hand   {best['cold'] / best['hand']:.2f}x")


if __name__ == "__main__":
    main()
