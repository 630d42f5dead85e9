"""Snapshots and content hashes: what counts as "changed" for versions and reuse."""

from __future__ import annotations

from pathlib import Path

from amlops.content import IgnoreRules, hash_tree, snapshot


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


def test_gitignore_patterns(tmp_path):
    rules = IgnoreRules(["*.log", "cache/", "/top.txt", "!keep.log", "# comment", "docs/*.md"])
    assert rules.ignored("a.log", False) and rules.ignored("deep/b.log", False)
    assert not rules.ignored("keep.log", False)
    assert rules.ignored("cache", True) and not rules.ignored("cache", False)
    assert rules.ignored("top.txt", False)
    assert rules.ignored("docs/a.md", False) and not rules.ignored("a.md", False)


def test_caches_never_enter_a_snapshot(tmp_path):
    folder = make(tmp_path / "s", {"main.py": "", "__pycache__/main.cpython-311.pyc": "x"})
    before = hash_tree(folder)
    (folder / "__pycache__" / "other.pyc").write_text("y")
    assert hash_tree(folder) == before
