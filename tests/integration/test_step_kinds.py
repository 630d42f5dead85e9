"""A step kind a backend has no executor for is refused by name, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import copy_repo, run_deploy

from amlops.backends.base import check_step_kinds
from amlops.backends.local.backend import LocalBackend
from amlops.errors import ConfigError
from amlops.spec import Pipeline, ScriptStep, StepBase

MESSAGE = "the local backend cannot run MysteryStep (pipeline 'odd', step 'm')"


@dataclass(frozen=True)
class MysteryStep(StepBase):
    """A kind built on the common step base that no backend knows."""

    def __post_init__(self) -> None:
        self._validate_common("MysteryStep")


def odd_pipeline(folder: Path) -> Pipeline:
    (folder / "main.py").write_text("")
    return Pipeline("odd", [ScriptStep("s", folder), MysteryStep("m", folder)])


def test_the_deploy_check_names_kind_backend_pipeline_and_step(tmp_path):
    with pytest.raises(ConfigError) as info:
        check_step_kinds(LocalBackend, [odd_pipeline(tmp_path)])
    assert str(info.value) == MESSAGE


def test_run_and_plan_refuse_it_before_any_step_runs(tmp_path):
    backend = LocalBackend(tmp_path / "ws")
    try:
        pipeline = odd_pipeline(tmp_path)
        with pytest.raises(ConfigError, match="the local backend cannot run MysteryStep"):
            backend.run(pipeline)
        with pytest.raises(ConfigError, match="the local backend cannot run MysteryStep"):
            backend.plan_run(pipeline)
        assert backend.store.all("SELECT * FROM runs") == []
        assert not any((tmp_path / "ws" / "runs").iterdir())
    finally:
        backend.close()


MODULE = """
from dataclasses import dataclass
from pathlib import Path

from amlops.spec import Pipeline, ScriptStep, StepBase


@dataclass(frozen=True)
class MysteryStep(StepBase):
    def __post_init__(self):
        self._validate_common("MysteryStep")


def build(cfg, compute):
    here = Path(__file__).parent / "steps" / "prep"
    return Pipeline("odd", [ScriptStep("s", here), MysteryStep("m", here)])
"""


def test_deploy_exits_2_with_one_line_and_creates_no_workspace(tmp_path):
    root = copy_repo(tmp_path / "repo")
    (root / "pipelines" / "odd.py").write_text(MODULE)
    config = root / "config" / "local.yml"
    config.write_text(config.read_text().replace("pipelines:\n", "pipelines:\n  odd: {}\n", 1))
    for args in ((), ("--plan",)):
        proc = run_deploy(root, *args, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"error: {MESSAGE}"]
        assert not (root / ".amlops").exists()
