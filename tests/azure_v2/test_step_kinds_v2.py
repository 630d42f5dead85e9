"""The v2 compiler refuses a step kind it has no mapping for, by name, before anything is built;
export refuses it before anything is written. No fakes: nothing here reaches a service."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from helpers import REPO

from amlops.backends import BACKENDS
from amlops.backends.base import check_step_kinds
from amlops.config import load_config
from amlops.errors import ConfigError
from amlops.spec import Pipeline, ScriptStep, StepBase


@dataclass(frozen=True)
class MysteryStep(StepBase):
    def __post_init__(self) -> None:
        self._validate_common("MysteryStep")


def test_deploy_check_and_export_name_the_kind(tmp_path):
    from amlops.backends.azureml_v2.export import export_v2

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "main.py").write_text("")
    pipeline = Pipeline("odd", [ScriptStep("s", folder), MysteryStep("m", folder)])
    message = "the azureml_v2 backend cannot run MysteryStep (pipeline 'odd', step 'm')"
    with pytest.raises(ConfigError) as info:
        check_step_kinds(BACKENDS["azureml_v2"].load(), [pipeline])
    assert str(info.value) == message
    with pytest.raises(ConfigError) as info:
        export_v2(load_config("dev-v2", REPO), [pipeline], tmp_path / "out")
    assert str(info.value) == message
    assert not (tmp_path / "out").exists()
