"""The ParallelStep driver, run as the local runner runs it: ``python -m amlops.parallel``.

Real worker processes, real files; entry scripts are written per test. Shared helpers make
a markers folder so a script can fail (or die) on the first try only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    summary: dict
    out_dir: Path
    log_dir: Path

    @property
    def lines(self) -> list[str]:
        file = self.out_dir / "parallel_run_step.txt"
        return file.read_text().splitlines() if file.exists() else []

    @property
    def failures(self) -> list[dict]:
        path = Path(self.summary["failures_file"])
        return [json.loads(line) for line in path.read_text().splitlines()]


def drive(
    tmp_path: Path,
    script: str,
    inputs: list[str],
    *options: str,
    user_args: tuple[str, ...] = (),
    workers: int = 2,
) -> Result:
    """Write the entry script, run the driver in the step folder, return what it left."""
    src, out, log = tmp_path / "src", tmp_path / "out", tmp_path / "log"
    for folder in (src, out, log, tmp_path / "markers"):
        folder.mkdir(exist_ok=True)
    (src / "entry.py").write_text(textwrap.dedent(script))
    defaults = {
        "--entry_script": "entry.py",
        "--error_threshold": "0",
        "--output_action": "append_row",
        "--process_count_per_node": str(workers),
        "--node_count": "1",
        "--run_invocation_timeout": "20",
        "--run_max_try": "3",
    }
    given = dict(zip(options[::2], options[1::2], strict=True))
    argv = [arg for pair in {**defaults, **given}.items() for arg in pair]
    argv += ["--output", str(out), "--summary", str(log / "summary.json")]
    for item in inputs:
        argv += ["--input", item]
    env = {**os.environ, "AMLOPS_STEP_LOG_DIR": str(log), "MARKERS": str(tmp_path / "markers")}
    proc = subprocess.run(
        [sys.executable, "-m", "amlops.parallel", *argv, "--", *user_args],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary_file = log / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return Result(proc.returncode, proc.stdout, proc.stderr, summary, out, log)


def make_files(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name)
    return folder


# A helper every entry script below may use: True only the first time `key` is seen, across
# all worker processes (O_EXCL makes the marker creation atomic).
FIRST_TIME = """
import os
def first_time(key):
    try:
        os.close(os.open(os.path.join(os.environ["MARKERS"], key), os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False
"""

ECHO = """
import os
def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""


def test_every_file_lands_once_and_init_sees_the_user_arguments(tmp_path):
    names = [f"f{i:02d}.txt" for i in range(23)]
    data = make_files(tmp_path / "data", names)
    script = """
        import argparse, os, sys
        def init():
            global tag
            parser = argparse.ArgumentParser()
            parser.add_argument("--tag")
            args, _ = parser.parse_known_args()
            assert sys.argv[0] == "entry.py", sys.argv
            tag = args.tag
        def run(mini_batch):
            assert len(mini_batch) <= 5 and all(os.path.isabs(p) for p in mini_batch)
            return [f"{tag} {os.path.basename(p)}" for p in mini_batch]
    """
    r = drive(
        tmp_path,
        script,
        [f"data=file:{data}"],
        "--mini_batch_size",
        "5",
        user_args=("--tag", "T"),
    )
    assert r.code == 0, r.stderr
    assert sorted(r.lines) == [f"T {n}" for n in names]
    s = r.summary
    assert (s["items"], s["items_failed"], s["mini_batches"], s["workers"]) == (23, 0, 5, 2)
    assert s["output_file"] == str(r.out_dir / "parallel_run_step.txt")
    assert r.failures == []
    assert "ParallelStep summary: Completed" in r.stdout
    assert "mini-batches 5/5" in r.stderr  # the final progress line
    assert not [p for p in os.listdir(tmp_path) if "staging" in p]


def test_retries_keep_the_output_exactly_once_and_permanent_failures_are_reported(tmp_path):
    names = [f"f{i:02d}.txt" for i in range(20)] + ["zz-bad.txt"]
    data = make_files(tmp_path / "data", names)
    script = (
        FIRST_TIME
        + """
def run(mini_batch):
    first = os.path.basename(mini_batch[0])
    if "bad" in first:
        raise ValueError(f"cannot score {first}")
    if first in ("f00.txt", "f08.txt") and first_time(first):
        raise RuntimeError("transient")
    return [os.path.basename(p) for p in mini_batch]
"""
    )
    r = drive(
        tmp_path,
        script,
        [f"data=file:{data}"],
        "--mini_batch_size",
        "4",
        "--error_threshold",
        "1",
    )
    assert r.code == 0, r.stdout + r.stderr
    assert sorted(r.lines) == sorted(names[:-1])  # no loss, no duplicate
    s = r.summary
    assert (s["items"], s["items_failed"], s["items_returned"]) == (21, 1, 20)
    assert (s["mini_batches"], s["mini_batches_failed"]) == (6, 1)
    assert s["mini_batches_retried"] == 3  # two transient ones and the bad one
    assert s["retries"] == 4  # 1 + 1 + (3 tries - 1) for the bad one
    [failure] = r.failures
    assert failure["items"] == {"input": "data", "files": [str(data / "zz-bad.txt")]}
    assert [t["try"] for t in failure["tries"]] == [1, 2, 3]
    error = failure["tries"][-1]["error"]
    assert "Traceback" in error and 'entry.py", line' in error
    assert "ValueError: cannot score zz-bad.txt" in error
    assert "ValueError: cannot score zz-bad.txt" in r.stdout  # not buried: in the step log


def test_a_worker_killed_mid_batch_is_replaced_and_its_batch_retried(tmp_path):
    names = [f"f{i:02d}.txt" for i in range(12)]
    data = make_files(tmp_path / "data", names)
    script = (
        FIRST_TIME
        + """
import signal
def run(mini_batch):
    out = [os.path.basename(p) for p in mini_batch]
    if "f06.txt" in out and first_time("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out
"""
    )
    r = drive(tmp_path, script, [f"data=file:{data}"], "--mini_batch_size", "3")
    assert r.code == 0, r.stdout + r.stderr
    assert sorted(r.lines) == names
    s = r.summary
    assert (s["items_failed"], s["mini_batches_retried"], s["worker_restarts"]) == (0, 1, 1)
    assert "killed by SIGKILL" in r.stderr


# Items fail by being left out of run()'s result (AML: failed = items in - items returned).
DROP_BAD = """
import os
def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch if "bad" not in p]
"""


@pytest.mark.parametrize("threshold, code", [(3, 0), (2, 1)])
def test_error_threshold_bounds_failed_items(tmp_path, threshold, code):
    names = ["a.txt", "bad1.txt", "bad2.txt", "bad3.txt", "c.txt"]
    data = make_files(tmp_path / "data", names)
    r = drive(
        tmp_path,
        DROP_BAD,
        [f"data=file:{data}"],
        "--mini_batch_size",
        "1",
        "--error_threshold",
        str(threshold),
    )
    assert r.code == code, r.stdout + r.stderr
    assert r.summary["items_failed"] == 3  # all three bad files, or the one over the bound
    if code == 0:
        assert sorted(r.lines) == ["a.txt", "c.txt"]
        assert len(r.failures) == 3
    else:
        # A failed step publishes nothing, and leaves no staging behind.
        assert os.listdir(r.out_dir) == []
        assert not [p for p in os.listdir(tmp_path) if "staging" in p]
        assert r.summary["output_file"] is None
        assert r.summary["error"].startswith(f"error_threshold={threshold} crossed")
        assert "error_threshold" in r.stderr


@pytest.mark.parametrize(
    "option, value, code",
    [
        ("--allowed_failed_count", "2", 0),
        ("--allowed_failed_count", "1", 1),
        ("--allowed_failed_percent", "20", 0),  # 2 of 10 mini-batches is exactly 20%
        ("--allowed_failed_percent", "19.9", 1),
    ],
)
def test_failed_mini_batch_bounds(tmp_path, option, value, code):
    names = sorted([f"f{i:02d}.txt" for i in range(16)] + ["bad1.txt", "bad2.txt", "bad3.txt"])
    data = make_files(tmp_path / "data", names)  # 19 files in 10 mini-batches of 2
    r = drive(
        tmp_path,
        DROP_BAD,
        [f"data=file:{data}"],
        "--mini_batch_size",
        "2",
        "--error_threshold",
        "-1",
        option,
        value,
    )
    assert r.code == code, r.stdout + r.stderr
    # bad1 and bad2 share a mini-batch, bad3 has its own: 2 failed mini-batches, 3 items.
    if code == 0:
        assert r.summary["mini_batches"] == 10
        assert (r.summary["mini_batches_failed"], r.summary["items_failed"]) == (2, 3)
        assert len(r.lines) == 16
    else:
        assert os.listdir(r.out_dir) == []
        assert r.summary["error"].startswith(f"{option[2:]}={value} crossed")


def test_a_run_past_the_timeout_is_killed_retried_and_reported_with_its_stack(tmp_path):
    data = make_files(tmp_path / "data", ["a.txt", "slow.txt", "c.txt"])
    script = """
        import os, time
        def run(mini_batch):
            if any("slow" in p for p in mini_batch):
                time.sleep(60)
            return [os.path.basename(p) for p in mini_batch]
    """
    r = drive(
        tmp_path,
        script,
        [f"data=file:{data}"],
        "--mini_batch_size",
        "1",
        "--run_invocation_timeout",
        "1",
        "--run_max_try",
        "2",
        "--error_threshold",
        "-1",
    )
    assert r.code == 0, r.stdout + r.stderr
    assert sorted(r.lines) == ["a.txt", "c.txt"]
    # The second timeout leaves no work, so only the first killed worker is replaced.
    assert (r.summary["items_failed"], r.summary["worker_restarts"]) == (1, 1)
    [failure] = r.failures
    assert len(failure["tries"]) == 2
    error = failure["tries"][0]["error"]
    assert "run_invocation_timeout=1 s" in error
    assert 'entry.py", line 5 in run' in error  # where the script was stuck


def test_tabular_mini_batches_are_sized_in_bytes_and_never_cross_a_file(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    # Fixed-width rows of 32 bytes: a 1KB mini-batch is exactly 32 rows.
    header = "id,file,pad\n"

    def rows(name, n, first):
        return "".join(f"{first + i:05d},{name},{'x' * 23}\n" for i in range(n))

    (data / "a.csv").write_text(header + rows("a", 100, 0))
    (data / "sub" / "b.csv").write_text(header + rows("b", 7, 100))
    (data / "empty.csv").write_text(header)
    script = """
        def run(df):
            assert list(df.columns) == ["id", "file", "pad"], df.columns
            # Text, as Azure ML hands run() a tabular dataset it did not type.
            assert all(isinstance(v, str) for v in df["id"]), df.dtypes
            assert df["file"].nunique() == 1, "a mini-batch crossed a file"
            return df[["id", "file"]].assign(n=len(df))
    """
    r = drive(tmp_path, script, [f"rows=tabular:{data}"], "--mini_batch_size", "1KB")
    assert r.code == 0, r.stdout + r.stderr
    assert (r.summary["items"], r.summary["mini_batches"]) == (107, 5)
    assert r.summary["settings"]["mini_batch_size"] == {"bytes": 1024}
    assert len(r.lines) == len(set(r.lines)) == 107
    sizes: dict[str, list[int]] = {}
    for line in r.lines:  # AML's append_row format: space-separated, no header, no index
        row_id, file, n = line.split(" ")
        sizes.setdefault(file, []).append(int(n))
    assert sorted(sizes["a"]) == [4] * 4 + [32] * 96
    assert sizes["b"] == [7] * 7
    assert "00005 a 32" in r.lines  # the id as written, not parsed into 5


def test_file_mini_batch_size_defaults_to_ten_files(tmp_path):
    data = make_files(tmp_path / "data", [f"f{i:02d}" for i in range(25)])
    r = drive(tmp_path, ECHO, [f"data=file:{data}"], workers=1)
    assert r.code == 0, r.stderr
    assert (r.summary["mini_batches"], r.summary["settings"]["mini_batch_size"]) == (
        3,
        {"files": 10},
    )


def test_summary_only_writes_no_output_file(tmp_path):
    data = make_files(tmp_path / "data", ["a", "b", "c"])
    r = drive(tmp_path, ECHO, [f"data=file:{data}"], "--output_action", "summary_only")
    assert r.code == 0, r.stderr
    assert os.listdir(r.out_dir) == []
    assert (r.summary["output_file"], r.summary["items"], r.summary["items_returned"]) == (
        None,
        3,
        3,
    )


@pytest.mark.parametrize(
    "case, code, message",
    [
        ("missing_script", 2, "--entry_script missing.py: no such file"),
        ("no_run", 2, "entry.py: has no run(mini_batch) function"),
        ("returns_none", 1, "run() returned NoneType (did the function forget to `return`?)"),
        ("returns_dict", 1, "run() returned dict; it must return a list or a pandas DataFrame"),
        ("mixed_inputs", 2, "inputs of mixed types (a=file, b=tabular)"),
        ("not_csv", 2, "notes.txt is not a .csv file"),
        ("init_fails", 1, "entry.py: init() failed"),
        ("bad_size", 2, "--mini_batch_size '1MB': file inputs take a count of files"),
    ],
)
def test_clear_errors(tmp_path, case, code, message):
    data = make_files(tmp_path / "data", ["a.csv", "b.csv"])
    make_files(tmp_path / "mixed", ["x.csv", "notes.txt"])
    script = {
        "no_run": "def init():\n    pass\n",
        "returns_none": "def run(mini_batch):\n    pass\n",
        "returns_dict": "def run(mini_batch):\n    return {}\n",
        "init_fails": "def init():\n    raise OSError('model not found')\n" + ECHO,
    }.get(case, ECHO)
    options = {
        "missing_script": ("--entry_script", "missing.py"),
        "bad_size": ("--mini_batch_size", "1MB"),
    }.get(case, ())
    inputs = {
        "mixed_inputs": [f"a=file:{data}", f"b=tabular:{data}"],
        "not_csv": [f"m=tabular:{tmp_path / 'mixed'}"],
    }.get(case, [f"data=file:{data}"])
    r = drive(tmp_path, script, inputs, *options)
    assert r.code == code, r.stdout + r.stderr
    assert message in r.stderr
    assert r.stderr.count("amlops.parallel: error:") == 1
    assert r.summary["status"] == "Failed" and message in r.summary["error"]
    assert os.listdir(r.out_dir) == []
    if case == "init_fails":  # the real traceback, in the log and the summary
        assert "OSError: model not found" in r.stdout
        assert "OSError: model not found" in r.summary["error"]


def test_an_empty_input_completes_with_an_empty_output_and_no_workers(tmp_path):
    (tmp_path / "data").mkdir()
    r = drive(tmp_path, ECHO, [f"data=file:{tmp_path / 'data'}"])
    assert r.code == 0, r.stderr
    assert (r.summary["items"], r.summary["mini_batches"], r.summary["workers"]) == (0, 0, 0)
    assert (r.out_dir / "parallel_run_step.txt").read_text() == ""
