"""``python -m amlops.parallel``: run one ParallelStep (the local runner's command line)."""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

from amlops.parallel.batching import InputError
from amlops.parallel.driver import Driver, StepFailed, prepare, resources
from amlops.parallel.options import Options, parse, summary_path_of
from amlops.parallel.summary import Tally, document, render


def _cancel(signum, frame):  # the runner cancels with SIGTERM: stop workers, publish nothing
    raise StepFailed(f"cancelled ({signal.Signals(signum).name})")


def _settings(opts: Options, kind: str, size: int) -> dict[str, object]:
    return {
        "input_kind": kind,
        "mini_batch_size": {"files": size} if kind == "file" else {"bytes": size},
        "error_threshold": opts.error_threshold,
        "allowed_failed_count": opts.allowed_failed_count,
        "allowed_failed_percent": opts.allowed_failed_percent,
        "output_action": opts.output_action,
        "run_invocation_timeout": opts.run_invocation_timeout,
        "run_max_try": opts.run_max_try,
    }


def _write(path: Path | None, doc: dict[str, object]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse(argv)
        inputs, kind, size = prepare(opts)
    except InputError as exc:
        print(f"amlops.parallel: error: {exc}", file=sys.stderr)
        doc = document(
            Tally(),
            status="Failed",
            error=str(exc),
            workers=0,
            workers_requested=0,
            output_file=None,
            failures_file=None,
            settings={},
            **resources([]),
        )
        _write(summary_path_of(argv), doc)
        return 2
    log_dir = Path(os.environ.get("AMLOPS_STEP_LOG_DIR") or opts.summary.parent)
    log_dir.mkdir(parents=True, exist_ok=True)
    driver = Driver(opts, inputs, kind, size, log_dir)
    signal.signal(signal.SIGTERM, _cancel)
    error, code, output_file, ok = None, 0, None, False
    try:
        output_file = driver.run()
        ok = True
    except StepFailed as exc:
        error, code = str(exc), exc.exit_code
    except Exception:  # a bug in the driver itself: still leave a summary behind
        error, code = f"internal error in amlops.parallel\n{traceback.format_exc()}", 1
    finally:
        driver.close(failed=not ok)
    doc = document(
        driver.tally,
        status="Failed" if code else "Completed",
        error=error,
        workers=driver.workers_used,
        workers_requested=opts.workers,
        output_file=output_file,
        failures_file=str(driver.failures_path),
        settings=_settings(opts, kind, size),
        **resources(driver.usages),
    )
    _write(opts.summary, doc)
    print(render(doc, driver.first_failure), flush=True)
    if error:
        print(f"amlops.parallel: error: {error.splitlines()[0]}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
