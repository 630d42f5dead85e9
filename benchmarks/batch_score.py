"""Batch scoring: the local ParallelStep against one plain pandas process on the same files.

Generates a scoring set shaped like the sample data (row_id + the ten diabetes features) as
many CSV files, trains a model like the train pipeline's, then measures, each as a fresh
process timed from start to exit:
  floor     one Python process: read every file with pandas, predict, append to one output;
  parallel  ``python -m amlops.parallel`` with 1 and 2 worker processes (same model, same files);
and the peak memory of the parallel step at 1x and 10x the rows (10x = every file linked ten
times, so generating it costs nothing). Prints rows/s, the ratio to the floor, the overhead per
mini-batch, and peak RSS. Run: ``make bench`` or ``python benchmarks/batch_score.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]

# The same work as pipelines/steps/score/score.py, with the model read from a pickle instead of
# the MLflow registry (loading from MLflow is a fixed start-up cost, not what this measures).
ENTRY_SCRIPT = """
import argparse, pickle
import pandas as pd

def init():
    global model
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    args, _ = parser.parse_known_args()
    with open(args.model, "rb") as f:
        model = pickle.load(f)

def run(mini_batch):
    features = mini_batch[list(model.feature_names_in_)]
    return pd.DataFrame({"row_id": mini_batch["row_id"], "prediction": model.predict(features)})
"""

FLOOR_SCRIPT = """
import os, pickle, sys
import pandas as pd

model_path, data, out = sys.argv[1:4]
with open(model_path, "rb") as f:
    model = pickle.load(f)
files = sorted(os.path.join(r, n) for r, _, names in os.walk(data) for n in names)
with open(out, "w") as sink:
    for path in files:
        frame = pd.read_csv(path)
        pred = model.predict(frame[list(model.feature_names_in_)])
        result = pd.DataFrame({"row_id": frame["row_id"], "prediction": pred})
        result.to_csv(sink, sep=" ", header=False, index=False, lineterminator="\\n")
"""

SPLIT = "reference: 2 floors, half the files each"
SPLIT_SCRIPT = """
import subprocess, sys
floor, model, *halves = sys.argv[1:]
procs = [subprocess.Popen([sys.executable, "-c", floor, model, h, h + ".out"]) for h in halves]
sys.exit(max(p.wait() for p in procs))
"""

# Pure driver cost: file mini-batches of one tiny file each, and a run() that does nothing.
NOOP_SCRIPT = """
def run(mini_batch):
    return mini_batch
"""


def generate(folder: Path, rows: int, files: int, seed: int = 0) -> None:
    """Rows resampled from the diabetes sample with a little noise, split over ``files`` CSVs.

    A pool of noisy rows is formatted once and drawn from per file, which keeps generating
    millions of rows to seconds; every row gets its own ``row_id`` key.
    """
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_diabetes

    base = load_diabetes(as_frame=True, scaled=False).frame[FEATURES].to_numpy()
    rng = np.random.default_rng(seed)
    pool_size = 100_000
    sample = base[rng.integers(0, len(base), pool_size)]
    sample = sample * rng.normal(1.0, 0.02, sample.shape)
    pool = pd.DataFrame(sample.round(3), columns=FEATURES)
    pool["sex"] = pool["sex"].round()
    lines = np.array(pool.to_csv(index=False, header=False).splitlines())
    folder.mkdir(parents=True)
    per_file = -(-rows // files)
    for i in range(files):
        n = min(per_file, rows - i * per_file)
        first = i * per_file + 1
        picked = lines[rng.integers(0, pool_size, n)]
        body = "".join(f"{first + j},{line}\n" for j, line in enumerate(picked))
        (folder / f"scoring-{i:04d}.csv").write_text("row_id," + ",".join(FEATURES) + "\n" + body)


def link_copies(src: Path, dest: Path, times: int) -> None:
    dest.mkdir(parents=True)
    for k in range(times):
        for f in sorted(src.iterdir()):
            os.link(f, dest / f"copy{k:02d}-{f.name}")


def train(path: Path) -> None:
    """A model like the train pipeline's defaults, fitted on the sample data."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    frame = load_diabetes(as_frame=True, scaled=False).frame
    model = GradientBoostingRegressor(n_estimators=200, learning_rate=0.05, max_depth=3)
    model.fit(frame[FEATURES], frame["target"])
    path.write_bytes(pickle.dumps(model))


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB, largest process of the tree) and CPU seconds (whole tree,
    which other load on the machine does not inflate) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"benchmark: {' '.join(cmd[:4])} failed:\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def parallel(work: Path, data: Path, workers: int, script: str, kind: str, size: str, args=()):
    """Run the driver like the local runner does; return (seconds, peak MiB, CPU s, summary)."""
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix=f"run-{workers}w-"))
    (run_dir / "src").mkdir()
    (run_dir / "out").mkdir()
    (run_dir / "src" / "entry.py").write_text(textwrap.dedent(script))
    cmd = [
        sys.executable, "-m", "amlops.parallel", "--entry_script", "entry.py",
        "--mini_batch_size", size, "--error_threshold", "0", "--output_action", "append_row",
        "--process_count_per_node", str(workers), "--node_count", "1",
        "--run_invocation_timeout", "600", "--run_max_try", "1",
        "--output", str(run_dir / "out"), "--input", f"data={kind}:{data}",
        "--summary", str(run_dir / "summary.json"), "--", *args,
    ]  # fmt: skip
    elapsed, rss, cpu = timed(cmd, run_dir / "src")
    summary = json.loads((run_dir / "summary.json").read_text())
    shutil.rmtree(run_dir)
    # Workers fork from the driver's fork server, so the driver's wait4() does not see them;
    # they report their own peak RSS and CPU time in the summary.
    rss = max(rss, summary["peak_rss_mb"]["worker_max"])
    cpu += summary["cpu_s"]["workers"]
    return elapsed, rss, cpu, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows at 1x")
    parser.add_argument("--files", type=int, default=40, help="CSV files at 1x")
    parser.add_argument("--scale", type=int, default=10, help="the larger data set, in x")
    parser.add_argument("--mini_batch_size", default="1MB")
    parser.add_argument("--repeat", type=int, default=1, help="rounds at 1x; best time counts")
    parser.add_argument(
        "--floor-at-scale", action="store_true", help="also time the floor on the larger data"
    )
    parser.add_argument("--workdir", type=Path, help="where to put the data (default: /tmp)")
    parser.add_argument("--setup", type=Path, help=argparse.SUPPRESS)  # internal: data + model
    args = parser.parse_args(argv)

    if args.setup:
        generate(args.setup / "data-1x", args.rows, args.files)
        train(args.setup / "model.pkl")
        return 0
    work = Path(tempfile.mkdtemp(prefix="amlops-bench-", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        data, big, model = work / "data-1x", work / f"data-{args.scale}x", work / "model.pkl"
        # Set up in a child: Linux carries a process's peak RSS across fork and exec, so this
        # process must stay small for the peaks measured in its children to mean anything.
        setup = [sys.executable, __file__, "--setup", str(work), "--rows", str(args.rows)]
        subprocess.run([*setup, "--files", str(args.files)], check=True)
        link_copies(data, big, args.scale)
        mb = sum(f.stat().st_size for f in data.iterdir()) / 1024**2
        print(
            f"batch_score: {args.rows:,} rows in {args.files} CSV files ({mb:.0f} MiB), "
            f"{os.cpu_count()} cores, mini_batch_size {args.mini_batch_size}; "
            f"set up in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
        print(f"{load} before the runs (other work on the machine slows the wall times)")
        floor_cmd = [sys.executable, "-c", FLOOR_SCRIPT, str(model), str(data), str(work / "f")]
        model_arg = ("--model", str(model))
        # The best any 2-process split can do here: the floor twice at once, on half the files
        # each (the files split by hand, with no driver, no mini-batches and no retries).
        halves = [work / "half-a", work / "half-b"]
        for h in halves:
            h.mkdir()
        for i, f in enumerate(sorted(data.iterdir())):
            os.link(f, halves[i % 2] / f.name)
        split_cmd = [
            sys.executable, "-c", SPLIT_SCRIPT, FLOOR_SCRIPT, str(model), *map(str, halves)
        ]  # fmt: skip
        best: dict[str, tuple] = {}
        for _ in range(args.repeat):  # rounds interleave the configurations; keep each best
            runs = {"floor: 1 pandas process": (*timed(floor_cmd, work), None)}
            for w in (1, 2):
                runs[f"ParallelStep, {w} worker(s)"] = parallel(
                    work, data, w, ENTRY_SCRIPT, "tabular", args.mini_batch_size, model_arg
                )
            runs[SPLIT] = (*timed(split_cmd, work), None)
            for name, result in runs.items():
                if name not in best or result[0] < best[name][0]:
                    best[name] = result
        floor_s = best["floor: 1 pandas process"][0]
        floor_rate = args.rows / floor_s
        print(
            f"\n{'run':42} {'seconds':>8} {'rows/s':>10} {'x floor':>8} {'CPU s':>6} {'RSS MiB':>8}"
        )
        for name, (s, rss, cpu, summary) in best.items():
            if summary is not None:
                assert summary["items_returned"] == args.rows, summary
            rate = args.rows / s
            print(
                f"{name:42} {s:8.2f} {rate:10,.0f} {rate / floor_rate:8.2f} {cpu:6.1f} {rss:8.0f}"
            )

        s1, summary1 = best["ParallelStep, 1 worker(s)"][0], best["ParallelStep, 1 worker(s)"][3]
        n_batches = summary1["mini_batches"]
        vs_floor_ms = 1000 * (s1 - floor_s) / n_batches
        tiny = work / "tiny"
        tiny.mkdir()
        for i in range(2000):
            (tiny / f"{i:05d}").write_bytes(b"")
        noop = parallel(work, tiny, 1, NOOP_SCRIPT, "file", "1")[3]
        noop_ms = 1000 * noop["elapsed_s"] / noop["mini_batches"]
        print(
            f"\nper-mini-batch overhead: {noop_ms:.2f} ms (driver round trip, no-op run(), "
            f"{noop['mini_batches']} mini-batches); 1 worker vs the floor: {vs_floor_ms:+.1f} ms "
            f"per mini-batch ({n_batches} mini-batches of {args.mini_batch_size}, "
            "start-up included)"
        )

        print(f"\npeak RSS, 2 workers (MiB): {'rows':>12} {'driver':>7} {'worker':>7} {'total':>7}")
        peaks = {}
        for scale, folder in ((1, data), (args.scale, big)):
            if scale == 1:
                summary = best["ParallelStep, 2 worker(s)"][3]
            else:
                big_s, _, _, summary = parallel(
                    work, folder, 2, ENTRY_SCRIPT, "tabular", args.mini_batch_size, model_arg
                )
                assert summary["items_returned"] == args.rows * scale, summary
            p = summary["peak_rss_mb"]
            total = p["driver"] + summary["workers"] * p["worker_max"]
            peaks[scale] = total
            print(
                f"  at {scale:>2}x data {'':14} {args.rows * scale:>12,} {p['driver']:7.0f} "
                f"{p['worker_max']:7.0f} {total:7.0f}   ({summary['items_per_s']:,.0f} rows/s)"
            )
        if args.floor_at_scale:
            # Start-up (imports, model load) weighs less on more data; this shows how much.
            floor_big = [sys.executable, "-c", FLOOR_SCRIPT, str(model), str(big), str(work / "f")]
            fb_s = timed(floor_big, work)[0]
            print(
                f"  at {args.scale}x data: floor {fb_s:.1f} s, 2 workers {big_s:.1f} s: "
                f"{fb_s / big_s:.2f}x the floor"
            )
        ratio2 = floor_s / best["ParallelStep, 2 worker(s)"][0]
        growth = peaks[args.scale] / peaks[1]
        print(
            f"\ntargets: 2 workers >= 1.7x floor: {ratio2:.2f}x "
            f"[{'ok' if ratio2 >= 1.7 else 'MISSED'}]; peak RSS at {args.scale}x <= 1.2x "
            f"that at 1x: {growth:.2f}x [{'ok' if growth <= 1.2 else 'MISSED'}]"
        )
        after = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
        print(f"total {time.perf_counter() - t0:.0f} s; {load} before, {after} after")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
