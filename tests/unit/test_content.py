"""Snapshots and content hashes: what counts as "changed" for versions and reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.content import hash_tree, snapshot, walk_files
from amlops.errors import ConfigError


def make(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_hash_depends_on_names_and_bytes_not_times(tmp_path):
    a = make(tmp_path / "a", {"x.py": "print(1)", "sub/y.txt": "y"})
    b = make(tmp_path / "b", {"x.py": "print(1)", "sub/y.txt": "y"})
    assert hash_tree(a) == hash_tree(b)
    (b / "sub" / "y.txt").write_text("z")
    assert hash_tree(a) != hash_tree(b)
    (b / "sub" / "y.txt").write_text("y")
    (b / "sub" / "y.txt").rename(b / "sub" / "w.txt")
    assert hash_tree(a) != hash_tree(b)


def test_amlignore_wins_over_gitignore(tmp_path):
    folder = make(
        tmp_path / "s",
        {
            "main.py": "",
            ".amlignore": "*.csv\n",
            ".gitignore": "*.py\n",
            "data.csv": "",
            "build/out.bin": "",
        },
    )
    kept = snapshot(folder, tmp_path / "snap")
    files = sorted(
        p.relative_to(tmp_path / "snap").as_posix()
        for p in (tmp_path / "snap").rglob("*")
        if p.is_file()
    )
    assert files == [".amlignore", ".gitignore", "build/out.bin", "main.py"]
    assert kept == hash_tree(folder)


def kept(folder: Path) -> list[str]:
    return [rel for rel, _ in walk_files(folder)]


def test_gitwildmatch_patterns_as_azureml_core_applies_them(tmp_path):
    # Each line here is one that a naive fnmatch got wrong; tests/azure checks every case
    # against azureml-core itself.
    folder = make(
        tmp_path / "s",
        {
            ".amlignore": "/*.py\n!keep.py\ndir/\n!dir/keep.py\n**/x\n\\#n.md\n# main.txt\n",
            "main.py": "",
            "keep.py": "",
            "main.txt": "",
            "#n.md": "",
            "x": "",
            "pkg/mod.py": "",
            "pkg/x": "",
            "dir/a.txt": "",
            "dir/keep.py": "",
            "sub/dir": "",
        },
    )
    assert kept(folder) == [
        ".amlignore",
        "dir/keep.py",
        "keep.py",
        "main.txt",
        "pkg/mod.py",
        "sub/dir",
    ]


def test_a_folder_matched_by_name_is_never_entered(tmp_path):
    folder = make(tmp_path / "s", {".gitignore": "build\n!build/keep.py\n", "build/keep.py": ""})
    assert kept(folder) == [".gitignore"]


def test_caches_are_in_a_snapshot_unless_ignored_as_in_azure(tmp_path):
    folder = make(tmp_path / "s", {"main.py": "", "__pycache__/main.cpython-311.pyc": "x"})
    assert kept(folder) == ["__pycache__/main.cpython-311.pyc", "main.py"]
    (folder / ".amlignore").write_text("__pycache__\n*.pyc\n")
    before = hash_tree(folder)
    (folder / "__pycache__" / "other.pyc").write_text("y")
    assert hash_tree(folder) == before


def test_symlinks_are_followed_and_a_broken_one_is_an_error(tmp_path):
    folder = make(tmp_path / "s", {"main.py": ""})
    make(tmp_path / "lib", {"util.py": ""})
    (folder / "lib").symlink_to(tmp_path / "lib")
    assert kept(folder) == ["lib/util.py", "main.py"]
    (folder / "gone").symlink_to(tmp_path / "missing")
    with pytest.raises(ConfigError, match="gone: a broken symlink"):
        kept(folder)
    (folder / "gone").unlink()
    (folder / "loop").symlink_to(folder)
    with pytest.raises(ConfigError, match="loop: a symlink loop"):
        kept(folder)
