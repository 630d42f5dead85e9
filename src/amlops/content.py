"""Content hashing and snapshots: what makes two folders "the same" for versioning and reuse."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from amlops.errors import ConfigError

if TYPE_CHECKING:
    from pathspec import PathSpec

# The folder's ignore files, in azureml-core's order: the first that exists is the only one
# read (azureml/_project/ignore_file.py: get_project_ignore_file). Nothing else is ever
# excluded: azureml-core's default_patterns only seed a new project's .amlignore.
IGNORE_FILES = (".amlignore", ".gitignore")


def _ignore_spec(folder: Path) -> PathSpec | None:
    for name in IGNORE_FILES:
        file = folder / name
        # os.path.exists, not is_file, and the platform's default encoding: as azureml-core's
        # IgnoreFile.exists / _create_pathspec, so the same file decides the same way here.
        if os.path.exists(file):
            import pathspec  # lazily: the CLI's start-up path never walks a folder

            with open(file) as fh:
                return pathspec.PathSpec.from_lines("gitwildmatch", fh)
    return None


def walk_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Yield (posix relative path, path) of every file azureml-core's snapshot of ``folder``
    uploads, in its walk order (names sorted within each folder, depth first)."""
    yield from _walk(folder, "", _ignore_spec(folder), frozenset({os.path.realpath(folder)}))


def _walk(
    directory: Path, prefix: str, spec: PathSpec | None, ancestors: frozenset[str]
) -> Iterator[tuple[str, Path]]:
    # As azureml/_base_sdk_common/merkle_tree.py: _create_merkletree_helper, with the exclude
    # function of ignore_file.py: IgnoreFile.is_file_excluded. Every entry, hidden or not, is
    # matched by its path relative to the ignore file's folder, a folder's without a trailing
    # slash. So "dir/" (or "dir/**") never matches "dir" itself: the walk goes in, drops each
    # file under it, and "!dir/keep.py" brings that one back. "dir" matches the folder, which
    # is then never entered, whatever a later negation says. Symlinks are followed.
    for name in sorted(os.listdir(directory)):
        rel = prefix + name
        path = directory / name
        if spec is not None and spec.match_file(rel):
            continue
        if path.is_file():
            # azureml-core leaves out (with a printed warning) a file it cannot read.
            if os.access(path, os.R_OK):
                yield rel, path
        elif path.is_dir():
            real = os.path.realpath(path)
            if real in ancestors:
                raise ConfigError(
                    f"{path}: a symlink loop, which azureml-core's snapshot follows until "
                    f"it fails: remove it or list {rel} in .amlignore"
                )
            yield from _walk(path, rel + "/", spec, ancestors | {real})
        else:
            # azureml-core takes anything not a file for a folder and fails listing it.
            raise ConfigError(
                f"{path}: a broken symlink or special file, which azureml-core's snapshot "
                f"cannot take: remove it or list {rel} in .amlignore"
            )


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


def file_hashes(folder: Path) -> dict[str, str]:
    """Each file a snapshot keeps, with a short hash of its bytes: what says which changed."""
    found = {}
    for rel, file in walk_files(folder):
        digest = hashlib.sha256()
        _hash_file(digest, file)
        found[rel] = digest.hexdigest()[:16]
    return found


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
