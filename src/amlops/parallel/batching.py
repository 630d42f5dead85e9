"""Inputs → mini-batches, streamed: a mini-batch is a description, read only by a worker.

File input: a mini-batch is ``mini_batch_size`` file paths. Tabular input: a byte range of one
CSV file, cut at line ends and about ``mini_batch_size`` bytes long, never crossing a file.
Cutting at line ends assumes no quoted field holds a newline (as AML's own delimited reader).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = ("file", "tabular")
DEFAULT_FILES = 10
DEFAULT_BYTES = 1024 * 1024
TABULAR_SUFFIXES = (".csv",)
_SIZE_RE = re.compile(r"^(\d+)([kKmMgG][bB])?$")
_UNITS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


class InputError(ValueError):
    """Bad inputs or sizing: the driver reports it on one line and exits with code 2."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    kind: str
    path: Path


@dataclass(frozen=True)
class MiniBatch:
    """One unit of work: ``paths`` for file input, or ``start``..``end`` bytes of ``paths[0]``."""

    id: int
    input: str
    kind: str
    paths: tuple[str, ...]
    start: int = 0
    end: int = 0

    def describe(self) -> dict[str, object]:
        """What a person needs to find the items again (failures file)."""
        if self.kind == "file":
            return {"input": self.input, "files": list(self.paths)}
        return {"input": self.input, "file": self.paths[0], "bytes": [self.start, self.end]}


def parse_input(text: str) -> InputSpec:
    """``name=kind:/abs/path`` → InputSpec; the path must exist."""
    name, sep, rest = text.partition("=")
    kind, sep2, path = rest.partition(":")
    if not sep or not sep2 or not name or kind not in KINDS or not path:
        raise InputError(f"--input {text!r}: expected <name>=file:<path> or <name>=tabular:<path>")
    p = Path(path)
    if not p.exists():
        raise InputError(f"--input {name}: {path} does not exist")
    return InputSpec(name, kind, p)


def check_kinds(inputs: list[InputSpec]) -> str:
    """All inputs of one step share a kind (AML: all FileDataset or all TabularDataset)."""
    if not inputs:
        raise InputError("--input: at least one input is required")
    kinds = {i.kind for i in inputs}
    if len(kinds) > 1:
        listing = ", ".join(f"{i.name}={i.kind}" for i in inputs)
        raise InputError(
            f"--input: inputs of mixed types ({listing}); a ParallelStep reads either files "
            "or tabular data, so split it into two steps"
        )
    return kinds.pop()


def parse_size(text: str | None, kind: str) -> int:
    """mini_batch_size → files per mini-batch (file input) or bytes (tabular input)."""
    if text is None:
        return DEFAULT_FILES if kind == "file" else DEFAULT_BYTES
    m = _SIZE_RE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise InputError(
            f"--mini_batch_size {text!r}: must be a positive count such as 10, or a size "
            "such as 1024, 512KB or 1MB"
        )
    unit = (m.group(2) or "").lower()
    if kind == "file" and unit:
        raise InputError(
            f"--mini_batch_size {text!r}: file inputs take a count of files (e.g. 10); "
            "sizes in KB/MB/GB are for tabular inputs"
        )
    return int(m.group(1)) * _UNITS[unit]


def list_files(spec: InputSpec) -> list[str]:
    """Every file of an input, recursively, sorted; hidden files and folders are skipped."""
    if spec.path.is_file():
        files = [str(spec.path)]
    else:
        files = []
        for root, dirs, names in os.walk(spec.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(os.path.join(root, n) for n in names if not n.startswith("."))
        files.sort()
    if spec.kind == "tabular":
        for f in files:
            if not f.lower().endswith(TABULAR_SUFFIXES):
                raise InputError(
                    f"--input {spec.name}: {f} is not a .csv file; tabular inputs read CSV "
                    "files with a header line (use a file input for other formats)"
                )
    return files


def estimate_count(files: list[str], kind: str, size: int) -> int:
    """Mini-batches the files will make: exact for files, ±1 per CSV file for tabular."""
    if kind == "file":
        return math.ceil(len(files) / size)
    return sum(math.ceil(os.path.getsize(f) / size) for f in files if os.path.getsize(f) > 0)


def mini_batches(inputs: list[tuple[InputSpec, list[str]]], size: int) -> Iterator[MiniBatch]:
    """Yield mini-batches lazily, so memory does not grow with the input."""
    next_id = 0
    for spec, files in inputs:
        if spec.kind == "file":
            for i in range(0, len(files), size):
                yield MiniBatch(next_id, spec.name, "file", tuple(files[i : i + size]))
                next_id += 1
            continue
        for path in files:
            for start, end in byte_ranges(path, size):
                yield MiniBatch(next_id, spec.name, "tabular", (path,), start, end)
                next_id += 1


def byte_ranges(path: str, size: int) -> Iterator[tuple[int, int]]:
    """Ranges after the header line, each ending just after a newline (or at end of file)."""
    with open(path, "rb") as f:
        f.readline()  # the header: every mini-batch gets it prepended by the reader
        pos, total = f.tell(), os.fstat(f.fileno()).st_size
        while pos < total:
            target = pos + size
            if target >= total:
                end = total
            else:
                # From target-1 so that a cut landing exactly on a line start stays there.
                f.seek(target - 1)
                f.readline()
                end = min(f.tell(), total)
            yield pos, end
            pos = end


def read_header_and_range(mb: MiniBatch) -> bytes:
    """The CSV text of a tabular mini-batch: the file's header line plus its byte range."""
    with open(mb.paths[0], "rb") as f:
        header = f.readline()
        if not header.endswith(b"\n"):
            header += b"\n"
        f.seek(mb.start)
        return header + f.read(mb.end - mb.start)


def load(mb: MiniBatch):
    """What ``run()`` receives: a list of paths, or a DataFrame of the mini-batch's rows."""
    if mb.kind == "file":
        return list(mb.paths)
    import io

    import pandas as pd

    # Every column a string, empty fields missing: what Azure ML hands run() for a tabular
    # dataset defined without reading the data (from_delimited_files(infer_column_types=False),
    # the only definition amlops can make offline). Typing columns is the entry script's job.
    return pd.read_csv(io.BytesIO(read_header_and_range(mb)), dtype=str)


def count_items(mb: MiniBatch) -> int:
    """Items in a mini-batch without parsing it (for one whose worker died before saying)."""
    if mb.kind == "file":
        return len(mb.paths)
    with open(mb.paths[0], "rb") as f:
        f.seek(mb.start)
        data = f.read(mb.end - mb.start)
    return sum(1 for line in data.splitlines() if line.strip())
