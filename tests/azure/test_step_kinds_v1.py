"""The v1 compiler refuses a step kind it has no mapping for, by name, at build time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aml_offline import make_backend, write_config, write_step

from amlops.backends.azureml_v1.backend import AzureMLv1Backend
from amlops.backends.base import check_step_kinds
from amlops.errors import ConfigError
from amlops.spec import Pipeline, ScriptStep, StepBase


@dataclass(frozen=True)
class MysteryStep(StepBase):
    def __post_init__(self) -> None:
        self._validate_common("MysteryStep")


def test_deploy_check_and_build_stage_name_the_kind(workspace, dry_run, assets, project):
    folder = write_step(project / "steps" / "odd", {"main.py": ""})
    pipeline = Pipeline("odd", [ScriptStep("s", folder), MysteryStep("m", folder)])
    with pytest.raises(ConfigError) as info:
        check_step_kinds(AzureMLv1Backend, [pipeline])
    assert str(info.value) == (
        "the azureml_v1 backend cannot run MysteryStep (pipeline 'odd', step 'm')"
    )
    config = write_config(project)
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_environments(config.environments, plan=False)
    with pytest.raises(ConfigError, match="the azureml_v1 backend cannot run MysteryStep"):
        backend.build([pipeline], plan=False)
    assert dry_run.caller._pipeline_entities == {}  # nothing was published
