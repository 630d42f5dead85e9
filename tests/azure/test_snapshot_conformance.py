"""A step's snapshot holds exactly the files azureml-core's own snapshot of the folder holds.

For each ignore file below, one real folder tree is built and three lists are compared:
``walk_files`` (what the local runner copies and hashes), the files azureml-core's
``SnapshotsClient.create_snapshot`` puts in a snapshot (its ``get_project_ignore_file(...)
.is_file_excluded`` and ``create_merkletree``, flattened by its own ``compute_diff`` against
an empty tree, as for a first upload), and the files azureml-pipeline-core hashes into a
step's reuse fingerprint (``_ModuleBuilder``). The local snapshot folder is checked too: it is
what a step script sees. Nothing here reimplements the SDK's walk; only the SDK is called.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amlops.content import snapshot, walk_files
from amlops.errors import ConfigError

# One tree for every pattern case: names that the patterns below tell apart.
TREE = (
    "main.py",
    "keep.py",
    "b.py",
    "notes.txt",
    "x",
    "#notes.md",
    ".hidden",
    ".config/settings.json",
    "pkg/mod.py",
    "pkg/keep.py",
    "pkg/deep/x",
    "pkg/deep/y.txt",
    "data/a.csv",
    "data/sub/b.csv",
    "lib/data/c.txt",
    "dir/inner.txt",
    "dir/keep.py",
    "sub/dir",  # a file named like the folder "dir"
    "docs/readme.md",
    "logs/run.log",
    "a/b",
    "a/m/n/b",
)

# (id, {ignore file name: text}): what the ignore files say.
CASES = [
    ("anchored-star-py", {".amlignore": "/*.py\n"}),
    ("unanchored-star-py", {".amlignore": "*.py\n"}),
    ("dir-slash", {".amlignore": "dir/\n"}),
    ("dir-slash-then-negated-file", {".amlignore": "dir/\n!dir/keep.py\n"}),
    ("dir-name-then-negated-file", {".amlignore": "dir\n!dir/keep.py\n"}),
    ("double-star-prefix", {".amlignore": "**/x\n"}),
    ("double-star-middle", {".amlignore": "a/**/b\n"}),
    ("double-star-zero-folders", {".amlignore": "data/**/a.csv\n"}),
    ("double-star-suffix", {".amlignore": "pkg/**\n!pkg/keep.py\n"}),
    ("negation-after-star-py", {".amlignore": "*.py\n!keep.py\n"}),
    ("csv-in-subfolders", {".amlignore": "*.csv\n"}),
    ("folder-star", {".amlignore": "data/*\n"}),
    ("folder-slash", {".amlignore": "data/\n"}),
    ("nested-path", {".amlignore": "pkg/deep/x\n"}),
    ("nested-path-star", {".amlignore": "pkg/*.py\n"}),
    ("trailing-and-leading-spaces", {".amlignore": "notes.txt   \n  main.py\n"}),
    ("comments-and-blank-lines", {".amlignore": "# main.py\n\n   \nkeep.py\n"}),
    ("escaped-hash", {".amlignore": "\\#notes.md\n"}),
    ("hidden-files", {".amlignore": ".*\n"}),
    ("ignore-file-lists-itself", {".amlignore": ".amlignore\n*.txt\n"}),
    ("amlignore-wins-over-gitignore", {".amlignore": "*.csv\n", ".gitignore": "*.py\n"}),
    ("empty-amlignore-still-wins", {".amlignore": "", ".gitignore": "*.py\n"}),
    ("gitignore-alone", {".gitignore": "*.py\nlogs/\n"}),
    ("question-mark-and-range", {".amlignore": "?.py\n[a-m]*.txt\n"}),
    ("range-negated-with-bang", {".amlignore": "[!k]*.py\n"}),
    ("range-negated-with-caret", {".amlignore": "[^k]*.py\n"}),
    ("azureml-default-patterns", {".amlignore": "docs\nlogs\noutputs\n.git\n"}),
    ("no-ignore-file", {}),
]


def _azureml_snapshot_files(root: Path) -> list[str]:
    from azureml._base_sdk_common.merkle_tree import DirTreeNode, create_merkletree
    from azureml._base_sdk_common.merkle_tree_differ import compute_diff
    from azureml._project.ignore_file import get_project_ignore_file

    # SnapshotsClient.create_snapshot, minus the HTTP: the same exclude function and tree,
    # and its upload list (added files) against an empty previous snapshot.
    folder = str(root)
    tree = create_merkletree(folder, get_project_ignore_file(folder).is_file_excluded)
    entries = compute_diff(DirTreeNode(), tree)
    return sorted(e.node_path for e in entries if e.is_file and e.operation_type == "added")


def _azureml_reuse_files(root: Path) -> list[str]:
    from azureml._base_sdk_common.merkle_tree import create_merkletree
    from azureml._project.ignore_file import get_project_ignore_file
    from azureml.pipeline.core._module_builder import _ModuleBuilder

    # _ModuleBuilder.calculate_hash's file list: the content part of a step's fingerprint.
    folder = os.path.abspath(root)
    tree = create_merkletree(folder, get_project_ignore_file(folder).is_file_excluded)
    paths: list[str] = []
    _ModuleBuilder.populate_paths_from_merkletree(tree, paths, folder)
    return sorted(Path(p).relative_to(folder).as_posix() for p in paths)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _assert_conforms(root: Path, tmp_path: Path) -> list[str]:
    ours = sorted(rel for rel, _ in walk_files(root))
    assert ours == _azureml_snapshot_files(root)
    assert ours == _azureml_reuse_files(root)
    snap = tmp_path / "snap"
    snapshot(root, snap)
    copied = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
    assert copied == ours
    return ours


@pytest.mark.parametrize("ignore", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_pattern_keeps_what_azureml_core_keeps(tmp_path, ignore):
    root = tmp_path / "src"
    _write(root, {rel: rel for rel in TREE})
    (root / "empty").mkdir()
    _write(root, ignore)
    _assert_conforms(root, tmp_path)


def test_caches_and_git_are_kept_unless_ignored(tmp_path):
    # azureml-core excludes nothing on its own: its default_patterns only seed a new
    # project's .amlignore. So caches in a step folder are uploaded unless ignored.
    root = tmp_path / "src"
    _write(root, {"main.py": "", "__pycache__/main.cpython-311.pyc": "", ".git/HEAD": ""})
    _write(root, {".ipynb_checkpoints/a.ipynb": "", "pkg/__pycache__/m.pyc": "", "m.pyc": ""})
    kept = _assert_conforms(root, tmp_path)
    assert "__pycache__/main.cpython-311.pyc" in kept and ".git/HEAD" in kept

    (root / ".amlignore").write_text("__pycache__\n*.pyc\n")
    kept = _assert_conforms(root, tmp_path / "again")
    assert not any("pycache" in rel or rel.endswith(".pyc") for rel in kept)


def test_symlinks_are_followed(tmp_path):
    outside = tmp_path / "outside"
    _write(outside, {"shared.py": "", "lib/util.py": ""})
    root = tmp_path / "src"
    _write(root, {"main.py": "", ".amlignore": "lib/util.py\n"})
    (root / "shared.py").symlink_to(outside / "shared.py")
    (root / "lib").symlink_to(outside / "lib")
    (root / "vendored").symlink_to(outside / "lib")
    kept = _assert_conforms(root, tmp_path)
    assert kept == [".amlignore", "main.py", "shared.py", "vendored/util.py"]


@pytest.mark.parametrize("kind", ["broken-symlink", "fifo", "symlink-loop"])
def test_what_azureml_core_cannot_snapshot_fails_here_too_unless_ignored(tmp_path, kind):
    root = tmp_path / "src"
    _write(root, {"main.py": ""})
    if kind == "broken-symlink":
        (root / "odd").symlink_to(tmp_path / "missing")
    elif kind == "fifo":
        os.mkfifo(root / "odd")
    else:
        (root / "odd").symlink_to(root)
    with pytest.raises(OSError):
        _azureml_snapshot_files(root)
    with pytest.raises(ConfigError, match="odd"):
        list(walk_files(root))

    (root / ".amlignore").write_text("odd\n")
    assert _assert_conforms(root, tmp_path) == [".amlignore", "main.py"]
