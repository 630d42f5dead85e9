"""The driver: hand mini-batches to worker processes, tolerate failures, publish once.

Exactly once: every mini-batch is accepted at most once, and only the part file of the try the
driver handed out counts; the driver alone appends parts to the staged output file, which is
renamed into the output folder only when every bound holds. A worker that dies or times out
is replaced and its mini-batch goes back in the queue until ``run_max_try`` is used up.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from amlops.parallel import worker as worker_mod
from amlops.parallel.batching import (
    InputSpec,
    MiniBatch,
    check_kinds,
    count_items,
    estimate_count,
    list_files,
    mini_batches,
    parse_input,
    parse_size,
)
from amlops.parallel.options import Options
from amlops.parallel.summary import Bounds, Progress, Tally

FAILURES_FILE = "parallel_failures.jsonl"
# Reading a mini-batch is not part of run(); this only guards against a read that hangs.
LOAD_ALLOWANCE_S = 60


class StepFailed(Exception):
    """The step ends Failed: a bound was crossed, or the entry script cannot work at all."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Task:
    mb: MiniBatch
    attempt: int
    n_items: int | None = None  # known once the worker has read the mini-batch


@dataclass
class Worker:
    proc: multiprocessing.process.BaseProcess
    conn: object
    dump_path: str
    ready: bool = False
    task: Task | None = None
    deadline: float | None = None
    killed: bool = False  # by the driver, after a timeout
    usage: tuple[float, float] = (0.0, 0.0)  # peak RSS MiB, CPU s: its last report


def prepare(opts: Options) -> tuple[list[tuple[InputSpec, list[str]]], str, int]:
    """Inputs listed and checked before any worker starts (bad input → InputError, exit 2)."""
    specs = [parse_input(text) for text in opts.inputs]
    kind = check_kinds(specs)
    size = parse_size(opts.mini_batch_size, kind)
    return [(spec, list_files(spec)) for spec in specs], kind, size


class Driver:
    def __init__(self, opts: Options, inputs, kind: str, size: int, log_dir: Path):
        self.opts = opts
        self.kind = kind
        self.size = size
        self.bounds = Bounds(
            opts.error_threshold, opts.allowed_failed_count, opts.allowed_failed_percent
        )
        self.tally = Tally()
        self.estimate = sum(estimate_count(files, kind, size) for _, files in inputs)
        self.pending = mini_batches(inputs, size)
        self.retry: deque[Task] = deque()
        self.exhausted = False
        self.workers: list[Worker] = []
        self.target_workers = max(1, min(opts.workers, self.estimate))
        self.write_output = opts.output_action == "append_row"
        self.errors: dict[int, list[dict[str, object]]] = {}
        self.first_failure: dict[str, object] | None = None
        self.failures_path = log_dir / FAILURES_FILE
        self.failures = open(self.failures_path, "w", encoding="utf-8")  # noqa: SIM115
        # Staging beside the output folder: same file system, so publishing is one rename.
        self.staging = tempfile.mkdtemp(
            prefix=f".{opts.output.name}.staging-", dir=opts.output.parent
        )
        self.staged_output = os.path.join(self.staging, "output")
        self.out = open(self.staged_output, "ab") if self.write_output else None  # noqa: SIM115
        self.progress = Progress(self.estimate)
        # Workers fork from a single-threaded fork server that has already imported pandas
        # (what every tabular run() gets), instead of each importing it again from scratch.
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(
            ["amlops.parallel.worker"] + (["pandas"] if kind == "tabular" else [])
        )
        self.spawned = 0
        self.usages: list[tuple[float, float]] = []  # of workers that have ended

    # ---- the loop -------------------------------------------------------------------------

    def run(self) -> str | None:
        """Process every mini-batch; return the published output file, or raise StepFailed."""
        if self.estimate:
            for _ in range(self.target_workers):
                self._spawn()
        while True:
            self._dispatch()
            if not any(w.task for w in self.workers) and self.exhausted and not self.retry:
                break
            if not self.workers:
                # Nothing alive: start a worker only if there is still a mini-batch to give it.
                task = self._next_task()
                if task is None:
                    continue
                self.retry.appendleft(task)
                self._spawn()
            self._wait()
            self._expire()
            crossed = self.bounds.crossed(self.tally, final=False)
            if crossed:
                raise StepFailed(crossed)
            self.progress.tick(self.tally)
        self.progress.tick(self.tally, force=True)
        crossed = self.bounds.crossed(self.tally, final=True)
        if crossed:
            raise StepFailed(crossed)
        return self._publish()

    def _next_task(self) -> Task | None:
        if self.retry:
            return self.retry.popleft()
        if self.exhausted:
            return None
        mb = next(self.pending, None)
        if mb is None:
            self.exhausted = True
            return None
        return Task(mb, 1)

    def _dispatch(self) -> None:
        for w in self.workers:
            if w.ready and w.task is None:
                task = self._next_task()
                if task is None:
                    return
                try:
                    w.conn.send((task.mb, task.attempt))
                except OSError:
                    # Died while idle: not a try of this mini-batch; the sentinel replaces it.
                    self.retry.appendleft(task)
                    w.ready = False
                    w.killed = True
                    continue
                w.task = task
                w.deadline = time.monotonic() + self.opts.run_invocation_timeout + LOAD_ALLOWANCE_S

    def _wait(self) -> None:
        deadlines = [w.deadline for w in self.workers if w.deadline is not None]
        timeout = self.progress.every  # wake up at least this often to report progress
        if deadlines:
            timeout = min(timeout, max(0.0, min(deadlines) - time.monotonic()))
        objects = [w.conn for w in self.workers] + [w.proc.sentinel for w in self.workers]
        ready = set(wait(objects, timeout))
        for w in list(self.workers):
            if w.conn in ready:
                self._drain(w)
            if w.proc.sentinel in ready and w in self.workers:
                self._drain(w)  # a "done" sent just before dying still counts
                self._on_exit(w)

    def _drain(self, w: Worker) -> None:
        try:
            while w.conn.poll():
                self._on_message(w, w.conn.recv())
        except (EOFError, OSError):
            pass  # the sentinel says why

    # ---- events ---------------------------------------------------------------------------

    def _on_message(self, w: Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind in ("done", "error"):
            w.usage = msg[-1]
        if kind == "ready":
            w.ready = True
        elif kind == "fatal":
            raise StepFailed(msg[2], exit_code=msg[1])
        elif w.task is None or (w.task.mb.id, w.task.attempt) != (msg[1], msg[2]):
            return  # not the try this worker holds (cannot happen; never count it)
        elif kind == "start":
            w.task.n_items = msg[3]
            w.deadline = time.monotonic() + self.opts.run_invocation_timeout
        elif kind == "done":
            task, w.task, w.deadline = w.task, None, None
            self._accept(task, n_items=msg[3], n_returned=msg[4])
        elif kind == "error":
            task, w.task, w.deadline = w.task, None, None
            if msg[3] is not None:
                task.n_items = msg[3]
            self._try_failed(task, w.proc.pid, msg[4])

    def _on_exit(self, w: Worker) -> None:
        self.workers.remove(w)
        self.usages.append(w.usage)
        w.conn.close()
        w.proc.join()
        if not w.ready and not w.killed:
            raise StepFailed(
                f"worker process {w.proc.pid} died while starting or in init() "
                f"({_describe_exit(w.proc.exitcode)})"
            )
        if w.task is not None:
            task, w.task = w.task, None
            self._try_failed(
                task,
                w.proc.pid,
                f"worker process {w.proc.pid} died while running this mini-batch "
                f"({_describe_exit(w.proc.exitcode)})",
            )
        if self.retry or not self.exhausted:
            self.tally.worker_restarts += 1
            self._spawn()

    def _expire(self) -> None:
        now = time.monotonic()
        for w in list(self.workers):
            if w.task is None or w.deadline is None or w.deadline > now:
                continue
            where = _stack_of(w)
            w.proc.kill()
            w.proc.join()
            w.killed = True
            task, w.task, w.deadline = w.task, None, None
            self._try_failed(
                task,
                w.proc.pid,
                f"run() did not return within run_invocation_timeout="
                f"{self.opts.run_invocation_timeout} s; the worker was killed. "
                f"Where it was:\n{where}",
            )
            self._on_exit(w)

    def _accept(self, task: Task, n_items: int, n_returned: int) -> None:
        part = worker_mod.part_path(self.staging, task.mb.id, task.attempt)
        if self.out is not None and os.path.exists(part):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, self.out, 1024 * 1024)
            os.unlink(part)
        t = self.tally
        t.items += n_items
        t.items_returned += n_returned
        t.mini_batches += 1
        if n_returned < n_items:
            # AML: fewer results than items marks the missing items, and the mini-batch, failed.
            t.items_failed += n_items - n_returned
            t.mini_batches_failed += 1
            self.errors.setdefault(task.mb.id, []).append(
                {
                    "try": task.attempt,
                    "error": f"run() returned {n_returned} results for {n_items} items",
                }
            )
            self._record_failure(task, n_items, n_items - n_returned)
        else:
            self.errors.pop(task.mb.id, None)

    def _try_failed(self, task: Task, pid: int | None, error: str) -> None:
        self.errors.setdefault(task.mb.id, []).append(
            {"try": task.attempt, "worker_pid": pid, "error": error}
        )
        # A traceback ends with the exception; the driver's own messages start with the point.
        lines = error.strip().splitlines() or [""]
        headline = lines[-1] if lines[0].startswith("Traceback") else lines[0]
        if task.attempt < self.opts.run_max_try:
            self.tally.retries += 1
            self.tally.retried_ids.add(task.mb.id)
            print(
                f"[parallel] mini-batch #{task.mb.id} try {task.attempt}/"
                f"{self.opts.run_max_try} failed ({headline[:200]}); retrying",
                file=sys.stderr,
                flush=True,
            )
            self.retry.append(Task(task.mb, task.attempt + 1, task.n_items))
            return
        n = task.n_items if task.n_items is not None else count_items(task.mb)
        t = self.tally
        t.items += n
        t.items_failed += n
        t.mini_batches += 1
        t.mini_batches_failed += 1
        self._record_failure(task, n, n)

    def _record_failure(self, task: Task, n_items: int, n_failed: int) -> None:
        record = {
            "mini_batch": task.mb.id,
            "items": task.mb.describe(),
            "items_in": n_items,
            "items_failed": n_failed,
            "tries": self.errors.pop(task.mb.id, []),
        }
        if self.first_failure is None:
            self.first_failure = record
        self.failures.write(json.dumps(record) + "\n")
        self.failures.flush()

    # ---- processes and files --------------------------------------------------------------

    def _spawn(self) -> None:
        self.spawned += 1
        parent, child = self.ctx.Pipe()
        dump_path = os.path.join(self.staging, f"worker-{self.spawned}.stack")
        proc = self.ctx.Process(
            target=worker_mod.main,
            args=(
                child,
                self.opts.entry_script,
                list(self.opts.user_args),
                self.staging,
                dump_path,
                self.write_output,
            ),
            name=f"amlops-parallel-worker-{self.spawned}",
            daemon=True,
        )
        proc.start()
        child.close()  # so the driver sees EOF when the worker goes
        self.workers.append(Worker(proc, parent, dump_path))

    def _publish(self) -> str | None:
        if self.out is None:
            return None
        self.out.close()
        self.out = None
        final = self.opts.output / self.opts.append_row_file_name
        os.replace(self.staged_output, final)
        return str(final)

    def close(self, failed: bool) -> None:
        """Stop every worker (at once if the step failed) and remove the staging folder."""
        for w in self.workers:
            if failed:
                w.proc.kill()
            else:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in self.workers:
            w.proc.join(timeout=None if failed else 10)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
            self.usages.append(w.usage)
        self.workers = []
        if self.out is not None:
            self.out.close()
        self.failures.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    @property
    def workers_used(self) -> int:
        return self.target_workers if self.estimate else 0


def _stack_of(w: Worker) -> str:
    """Ask the stuck worker for its Python stack (faulthandler on SIGUSR1) before killing it."""
    try:
        os.kill(w.proc.pid, signal.SIGUSR1)
    except ProcessLookupError:
        return "(the worker had already exited)"
    # faulthandler writes from the signal handler; wait until the dump stops growing.
    end, text = time.monotonic() + 3.0, ""
    while time.monotonic() < end:
        time.sleep(0.05)
        try:
            now = Path(w.dump_path).read_text()
        except OSError:
            continue
        if now and now == text:
            break
        text = now
    return text.strip() or "(no stack: the worker did not answer)"


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def resources(workers: list[tuple[float, float]]) -> dict[str, dict[str, float]]:
    """Peak resident memory (MiB) and CPU seconds of the driver and of the workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "peak_rss_mb": {
            "driver": round(own.ru_maxrss / 1024, 1),
            "worker_max": round(max((rss for rss, _ in workers), default=0.0), 1),
        },
        "cpu_s": {
            "driver": round(own.ru_utime + own.ru_stime, 2),
            "workers": round(sum(cpu for _, cpu in workers), 2),
        },
    }
