"""What a failed step's logs say, in one line: the exception that stopped it, and where.

A step's own traceback, or a ParallelStep's first failed mini-batch (its summary prints that
traceback in stdout), ends with the exception line a person needs: ``KeyError: 'row_id'``,
not the driver's closing ``init() failed``.
"""

from __future__ import annotations

import re
from pathlib import Path

LOG_TAIL_LINES = 20
LOGS = ("stderr.txt", "stdout.txt")  # in the order they are searched
TRACEBACK = "Traceback (most recent call last):"
# The line a traceback ends with: an exception's dotted name, then its message.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def first_exception(step_dir: Path) -> tuple[str, Path, int] | None:
    """(the exception line, the log file, the line its traceback starts on), or None."""
    for name in LOGS:
        file = step_dir / name
        if not file.is_file():
            continue
        lines = file.read_text(errors="replace").splitlines()
        for start, line in enumerate(lines):
            if line.strip() != TRACEBACK:
                continue
            indent = len(line) - len(line.lstrip())
            for following in lines[start + 1 :]:
                text = following[indent:]
                if text and not text[0].isspace():
                    if EXCEPTION_LINE.match(text):
                        return text.strip(), file, start + 1
                    break
    return None


def tail(file: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not file.exists():
        return ""
    text = file.read_text(errors="replace").rstrip().splitlines()
    return "\n".join(text[-lines:])


def failure_message(step: str, exit_code: int | None, step_dir: Path) -> str:
    """One line naming the step, its exit code and the exception, then the stderr tail."""
    message = f"step {step!r} failed (exit code {exit_code})"
    found = first_exception(step_dir)
    if found is not None:
        line, file, number = found
        message += f": {line} (traceback in {file}:{number})"
    last = tail(step_dir / "stderr.txt")
    return f"{message}\n{last}" if last else message
