"""The driver's command line, as the local runner writes it (AML's ParallelRunConfig names)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path

from amlops.parallel.batching import InputError
from amlops.spec import OUTPUT_ACTIONS, ParallelStep

DEFAULT_APPEND_ROW_FILE = "parallel_run_step.txt"


@dataclass(frozen=True)
class Options:
    """The driver's parsed command line: ParallelStep's settings (typed as the driver uses
    them; parse() fills them from the spec's list, so a setting missing here fails at once)
    and the runner's own arguments."""

    entry_script: str
    mini_batch_size: str | None
    error_threshold: int
    allowed_failed_count: int | None
    allowed_failed_percent: float | None
    output_action: str
    append_row_file_name: str
    process_count_per_node: int
    node_count: int
    run_invocation_timeout: int
    run_max_try: int
    output: Path
    inputs: tuple[str, ...]
    summary: Path
    user_args: tuple[str, ...]

    @property
    def workers(self) -> int:
        return self.node_count * self.process_count_per_node


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump: the runner wrote this line
        raise InputError(message)


def _parser() -> argparse.ArgumentParser:
    """One flag per ParallelStep setting, typed and defaulted as the spec declares them."""
    p = _Parser(prog="python -m amlops.parallel", allow_abbrev=False)
    defaults = {f.name: f.default for f in fields(ParallelStep)}
    defaults["append_row_file_name"] = DEFAULT_APPEND_ROW_FILE  # v1's name when none is set
    for name, cli_type in ParallelStep.setting_types().items():
        p.add_argument(f"--{name}", type=cli_type, default=defaults[name])
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--input", action="append", default=[], dest="inputs")
    p.add_argument("--summary", required=True, type=Path)
    return p


def summary_path_of(argv: list[str]) -> Path | None:
    """Where to write the summary even when the rest of the command line is bad."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--summary" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--summary="):
            return Path(arg.split("=", 1)[1])
    return None


def parse(argv: list[str]) -> Options:
    """Parse and check the command line; raise InputError naming the argument."""
    own, user = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :])
        if "--" in argv
        else (
            argv,
            [],
        )
    )
    ns = _parser().parse_args(own)
    _at_least("--error_threshold", ns.error_threshold, -1)
    if ns.allowed_failed_count is not None:
        _at_least("--allowed_failed_count", ns.allowed_failed_count, -1)
    pct = ns.allowed_failed_percent
    if pct is not None and not (0 <= pct <= 100 or pct == -1):
        raise InputError(f"--allowed_failed_percent {pct:g}: must be between 0 and 100")
    if pct == -1:
        pct = 100.0
    process_count = ns.process_count_per_node or os.cpu_count() or 1
    _at_least("--process_count_per_node", process_count, 1)
    _at_least("--node_count", ns.node_count, 1)
    _at_least("--run_invocation_timeout", ns.run_invocation_timeout, 1)
    _at_least("--run_max_try", ns.run_max_try, 1)
    name = ns.append_row_file_name
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"--append_row_file_name {name!r}: must be a plain file name")
    if ns.output_action not in OUTPUT_ACTIONS:
        raise InputError(
            f"--output_action {ns.output_action!r}: must be one of {', '.join(OUTPUT_ACTIONS)}"
        )
    if not Path(ns.entry_script).is_file():
        raise InputError(
            f"--entry_script {ns.entry_script}: no such file in the step's folder {os.getcwd()}"
        )
    if not ns.output.is_dir():
        raise InputError(f"--output {ns.output}: must be an existing folder")
    settings = {name: getattr(ns, name) for name in ParallelStep.setting_types()}
    settings.update(
        allowed_failed_percent=pct, append_row_file_name=name, process_count_per_node=process_count
    )
    return Options(
        **settings,
        output=ns.output.resolve(),
        inputs=tuple(ns.inputs),
        summary=ns.summary,
        user_args=tuple(user),
    )


def _at_least(flag: str, value: int, low: int) -> None:
    if value < low:
        raise InputError(f"{flag} {value}: must be an integer >= {low}")
