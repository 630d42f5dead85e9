"""One worker process: load the entry script, call ``init()`` once, then ``run()`` per mini-batch.

Messages to the driver (over a multiprocessing pipe; the user's prints go to the step log):
``("ready",)``, ``("start", id, try, n_items)``, ``("done", id, try, n_items, n_returned)``,
``("error", id, try, n_items | None, traceback)``, ``("fatal", exit_code, message)``.
Results are written to ``<staging>/<id>-<try>.part``; only the driver decides which part counts,
so a worker killed half-way through writing can never add a duplicate or a torn line.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import os
import resource
import signal
import sys
import traceback
from pathlib import Path

from amlops.parallel.batching import MiniBatch, load

LIST_TYPES = (list, tuple)


class ResultTypeError(TypeError):
    """``run()`` returned something that is not one element per succeeded item."""


def part_path(staging: str, mb_id: int, attempt: int) -> str:
    return os.path.join(staging, f"{mb_id:09d}-{attempt}.part")


def load_entry_script(entry_script: str):
    """Import the entry script as a module named after its file, as AML does."""
    path = Path(entry_script).resolve()
    # AML puts the source directory (the cwd here) and the script's folder on sys.path.
    for folder in (str(path.parent), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def count_results(result: object, entry_script: str) -> int:
    """Elements ``run()`` returned; anything but a list-like or a DataFrame is a bug to report."""
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    if isinstance(result, LIST_TYPES):
        return len(result)
    if pd is not None and isinstance(result, pd.DataFrame | pd.Series):
        return len(result)
    if np is not None and isinstance(result, np.ndarray) and result.ndim >= 1:
        return len(result)
    hint = " (did the function forget to `return`?)" if result is None else ""
    raise ResultTypeError(
        f"{entry_script}: run() returned {type(result).__name__}{hint}; it must return a list "
        "or a pandas DataFrame with one element per input item that succeeded"
    )


def write_results(result: object, path: str) -> None:
    """AML's append_row format: DataFrame rows space-separated, no header or index; else str()."""
    pd = sys.modules.get("pandas")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        if pd is not None and isinstance(result, pd.DataFrame):
            result.to_csv(f, sep=" ", header=False, index=False, lineterminator="\n")
        else:
            f.writelines(f"{element}\n" for element in result)


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the entry script's frames down, without this module's frame."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def main(
    conn,
    entry_script: str,
    user_args: list[str],
    staging: str,
    dump_path: str,
    write_output: bool,
) -> None:
    """Worker process body (the target of a multiprocessing.Process)."""
    # AML entry scripts read their arguments with argparse in init().
    sys.argv = [entry_script, *user_args]
    try:
        module = load_entry_script(entry_script)
    except BaseException as exc:  # noqa: BLE001 - any import failure is the user's to read
        conn.send(("fatal", 1, f"{entry_script}: import failed\n{_user_traceback(exc)}"))
        return
    run = getattr(module, "run", None)
    if not callable(run):
        conn.send(("fatal", 2, f"{entry_script}: has no run(mini_batch) function; define one"))
        return
    init = getattr(module, "init", None)
    if callable(init):
        try:
            init()
        except BaseException as exc:  # noqa: BLE001
            conn.send(("fatal", 1, f"{entry_script}: init() failed\n{_user_traceback(exc)}"))
            return
    # On a timeout the driver signals first, to record where run() was stuck.
    dump_file = open(dump_path, "w")  # noqa: SIM115 - must stay open for the handler
    faulthandler.register(signal.SIGUSR1, file=dump_file, all_threads=True)
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the driver is gone: stop rather than linger
        if msg is None:
            return
        mb, attempt = msg
        _process(conn, run, mb, attempt, entry_script, staging, write_output)


def _process(conn, run, mb: MiniBatch, attempt: int, entry_script, staging, write_output) -> None:
    n_items = None
    try:
        batch = load(mb)
        n_items = len(batch)
        conn.send(("start", mb.id, attempt, n_items))
        result = run(batch)
        n_returned = count_results(result, entry_script)
        if write_output and n_returned:
            write_results(result, part_path(staging, mb.id, attempt))
    except ResultTypeError as exc:
        conn.send(("fatal", 1, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - a failing mini-batch, reported with its traceback
        conn.send(("error", mb.id, attempt, n_items, _user_traceback(exc), usage()))
        return
    conn.send(("done", mb.id, attempt, n_items, n_returned, usage()))


def usage() -> tuple[float, float]:
    """This worker's peak RSS (MiB) and CPU seconds so far. Workers are not the driver's
    children (they fork from a fork server), so they report their own."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_maxrss / 1024, u.ru_utime + u.ru_stime
