"""Content hashing and snapshots: what makes two folders "the same" for versioning and reuse."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# Never part of a snapshot, whatever the ignore file says: caches change on every run.
ALWAYS_IGNORED = ("__pycache__/", "*.pyc", ".git/", ".ipynb_checkpoints/")


class IgnoreRules:
    """The subset of gitignore syntax AML applies to .amlignore / .gitignore snapshots."""

    def __init__(self, patterns: list[str]):
        self.rules: list[tuple[bool, bool, bool, str]] = []
        for raw in patterns:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:] if negate else line
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            self.rules.append((negate, dir_only, anchored, line.lstrip("/")))

    @classmethod
    def for_folder(cls, folder: Path) -> IgnoreRules:
        """.amlignore wins over .gitignore, as in Azure ML."""
        patterns = list(ALWAYS_IGNORED)
        for name in (".amlignore", ".gitignore"):
            file = folder / name
            if file.is_file():
                patterns += file.read_text().splitlines()
                break
        return cls(patterns)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        result = False
        name = rel.rsplit("/", 1)[-1]
        for negate, dir_only, anchored, pattern in self.rules:
            if dir_only and not is_dir:
                continue
            target = rel if anchored else name
            if fnmatch.fnmatchcase(target, pattern):
                result = not negate
        return result


def walk_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Yield (posix relative path, path) of every file a snapshot keeps, in sorted order."""
    rules = IgnoreRules.for_folder(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        rel_base = base.relative_to(folder).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        dirnames[:] = sorted(d for d in dirnames if not rules.ignored(prefix + d, True))
        for name in sorted(filenames):
            if not rules.ignored(prefix + name, False):
                yield prefix + name, base / name


def hash_tree(path: Path, *, respect_ignore: bool = True) -> str:
    """sha256 over relative paths and bytes; a single file hashes as its content."""
    digest = hashlib.sha256()
    if path.is_file():
        _hash_file(digest, path)
        return digest.hexdigest()
    files = walk_files(path) if respect_ignore else _all_files(path)
    for rel, file in files:
        digest.update(rel.encode() + b"\0")
        _hash_file(digest, file)
        digest.update(b"\0")
    return digest.hexdigest()


def _all_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield file.relative_to(folder).as_posix(), file


def _hash_file(digest: hashlib._Hash, file: Path) -> None:
    with file.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)


def snapshot(source: Path, dest: Path) -> str:
    """Copy the files a snapshot keeps from source to dest; return their content hash."""
    digest = hashlib.sha256()
    dest.mkdir(parents=True, exist_ok=True)
    for rel, file in walk_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        digest.update(rel.encode() + b"\0")
        _hash_file(digest, target)
        digest.update(b"\0")
    return digest.hexdigest()


def hash_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()
