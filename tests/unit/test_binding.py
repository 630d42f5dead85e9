"""The binding contract is checked when pipelines are built, for every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, copy_repo

from amlops.binding import check_bindings
from amlops.config import load_config
from amlops.deploy import build_pipelines
from amlops.errors import ConfigError
from amlops.spec import DatasetInput, Output, ParallelStep, Pipeline, ScriptStep


def script(folder: Path, data: DatasetInput, **kw) -> ScriptStep:
    (folder / "main.py").write_text("")
    return ScriptStep("prep", folder, arguments=["--data", data], **kw)


def test_a_script_step_may_read_a_file_dataset_mounted_or_downloaded(tmp_path):
    for mode in ("mount", "download"):
        p = Pipeline("p", [script(tmp_path, DatasetInput("rows", mode=mode))])
        check_bindings(p, {"rows": "file"}, "config/x.yml: pipelines.p")


@pytest.mark.parametrize(
    "kind, mode, what",
    [("tabular", "mount", "a tabular dataset"), ("file", "direct", "a dataset in direct mode")],
)
def test_a_script_step_reading_a_dataset_as_an_id_is_refused(tmp_path, kind, mode, what):
    p = Pipeline("p", [script(tmp_path, DatasetInput("rows", mode=mode))])
    with pytest.raises(ConfigError) as info:
        check_bindings(p, {"rows": kind}, "config/x.yml: pipelines.p")
    assert str(info.value).startswith(
        f"config/x.yml: pipelines.p: step 'prep' reads {what} ('rows'); on Azure ML its script "
        "would receive the dataset's ID, not files"
    )


def test_a_dataset_not_in_config_is_named(tmp_path):
    p = Pipeline("p", [script(tmp_path, DatasetInput("elsewhere"))])
    with pytest.raises(ConfigError, match="reads dataset 'elsewhere', which is not under"):
        check_bindings(p, {}, "config/x.yml: pipelines.p")


def test_a_parallel_step_partitions_a_tabular_dataset_but_not_as_a_side_input(tmp_path):
    (tmp_path / "score.py").write_text("")
    rows = DatasetInput("rows")
    ok = ParallelStep("score", tmp_path, inputs=[rows], output=Output("o"))
    check_bindings(Pipeline("p", [ok]), {"rows": "tabular"}, "here")
    side = ParallelStep(
        "score", tmp_path, inputs=[DatasetInput("files")], side_inputs=[rows], output=Output("o")
    )
    with pytest.raises(ConfigError, match="step 'score' reads a tabular dataset"):
        check_bindings(Pipeline("p", [side]), {"rows": "tabular", "files": "file"}, "here")


def test_the_train_pipeline_with_a_tabular_dataset_is_refused_before_anything_runs(tmp_path):
    """What the review found: prep got a folder locally and the dataset's ID on Azure."""
    root = copy_repo(tmp_path / "repo")
    config = root / "config" / "dev.yml"
    text = config.read_text()
    config.write_text(text.replace("  diabetes:\n    kind: file", "  diabetes:\n    kind: tabular"))
    with pytest.raises(ConfigError, match="step 'prep' reads a tabular dataset \\('diabetes'\\)"):
        build_pipelines(load_config("dev", root))


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_every_configured_pipeline_keeps_the_contract(env):
    assert build_pipelines(load_config(env, REPO))
