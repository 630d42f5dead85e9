"""What a failed step's logs say, in one line: the exception that stopped it, and where.

A step's own traceback, or a ParallelStep's first failed mini-batch (its summary prints that
traceback in stdout), ends with the exception line a person needs: ``KeyError: 'row_id'``,
not the driver's closing ``init() failed``.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TextIO

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


ECHO_POLL_S = 0.1


class Echo:
    """While a step runs, copy the lines it writes to its log files to ``stream``, prefixed
    with the step's name: its output (a ParallelStep's progress too) is seen as it happens,
    while the files stay the record."""

    def __init__(self, step_dir: Path, step: str, stream: TextIO):
        self.files = [step_dir / name for name in ("stdout.txt", "stderr.txt")]
        self.prefix = f"  {step} | "
        self.stream = stream
        self._offsets = dict.fromkeys(self.files, 0)
        self._partial = dict.fromkeys(self.files, b"")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"echo-{step}", daemon=True)

    def __enter__(self) -> Echo:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._copy(final=True)

    def _loop(self) -> None:
        while not self._done.wait(ECHO_POLL_S):
            self._copy(final=False)

    def _copy(self, *, final: bool) -> None:
        for file in self.files:
            try:
                with file.open("rb") as fh:
                    fh.seek(self._offsets[file])
                    data = fh.read()
            except FileNotFoundError:
                continue
            self._offsets[file] += len(data)
            lines = (self._partial[file] + data).split(b"\n")
            rest = lines.pop()  # what follows the last newline: a line still being written
            if final and rest:
                lines.append(rest)
                rest = b""
            self._partial[file] = rest
            for line in lines:
                text = line.decode(errors="replace").rstrip("\r")
                self.stream.write(f"{self.prefix}{text}\n")
            self.stream.flush()
