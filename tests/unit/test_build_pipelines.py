"""Pipeline modules load from their own repository, with no global import state left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import copy_repo

from amlops.config import load_config
from amlops.deploy import build_pipelines
from amlops.errors import ConfigError


def repo(tmp_path: Path, name: str, description: str) -> Path:
    root = copy_repo(tmp_path / name)
    train = root / "pipelines" / "train.py"
    text = train.read_text()
    assert 'DESCRIPTION = "Train, evaluate and register a model"' in text
    train.write_text(text.replace("Train, evaluate and register a model", description))
    return root


def test_two_repositories_in_one_process_each_get_their_own_pipelines(tmp_path):
    before_path, before_modules = list(sys.path), set(sys.modules)
    first = build_pipelines(load_config("local", repo(tmp_path, "one", "first repo")))
    second = build_pipelines(load_config("local", repo(tmp_path, "two", "second repo")))
    assert [p.description for p in first if p.name == "train"] == ["first repo"]
    assert [p.description for p in second if p.name == "train"] == ["second repo"]
    # Each step folder is the repository's own.
    assert all(s.source_dir.is_relative_to(tmp_path / "one") for p in first for s in p.steps)
    assert all(s.source_dir.is_relative_to(tmp_path / "two") for p in second for s in p.steps)
    assert sys.path == before_path
    added = set(sys.modules) - before_modules
    assert not [m for m in added if m.split(".")[0] in ("pipelines", "train", "batch_score")]
    assert not [m for m in added if m.startswith("_amlops_pipeline")]


def test_a_missing_module_or_build_function_is_named(tmp_path):
    root = repo(tmp_path, "one", "x")
    (root / "pipelines" / "batch_score.py").unlink()
    with pytest.raises(ConfigError, match=r"pipelines.batch_score: no pipeline module"):
        build_pipelines(load_config("local", root))
    (root / "pipelines" / "batch_score.py").write_text("def built(cfg, compute): ...\n")
    with pytest.raises(ConfigError, match=r"has no build\(cfg, compute\) function"):
        build_pipelines(load_config("local", root))
