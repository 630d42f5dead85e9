"""The batch-score pipeline: one ParallelStep scoring a folder of CSV files with a registered model.

Model name and version, the input data path (a DataPathParam, so a schedule or a REST call can
point it at new data) and the ParallelRunConfig knobs users tune are pipeline parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from amlops.config import PipelineConfig, SettingsReader
from amlops.spec import MINI_BATCH_SIZE_RE, DataPathParam, Output, ParallelStep, Param, Pipeline

STEP_DIR = Path(__file__).parent / "steps" / "score"
DATA_PARAM = "scoring_data"
DEFAULT_PARAMETERS: dict[str, Any] = {
    "model_version": "production",  # the alias the train pipeline's register step moves
    "mini_batch_size": "1MB",  # tabular input: approximate bytes of CSV per run() call
    "error_threshold": 10,  # rows that may fail (missing key) before the step fails
    "process_count_per_node": 2,
}
REQUIRED = ("environment", "model_name", "key_column", "input_datastore", "input_path")
DESCRIPTION = "Score new data with the production model (ParallelRunStep)"


@dataclass(frozen=True)
class BatchScoreSettings:
    environment: str
    model_name: str
    key_column: str
    input_datastore: str
    input_path: str
    description: str = DESCRIPTION

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> BatchScoreSettings:
        r = SettingsReader(cfg)
        r.allow({*REQUIRED, "description"})
        values = {key: r.string(key) for key in REQUIRED}
        return cls(**values, description=r.string("description", DESCRIPTION, required=False))


def parameters(cfg: PipelineConfig) -> dict[str, Any]:
    """Parameter defaults from config, checked the way the ParallelRunConfig will use them."""
    r = SettingsReader(cfg)
    # YAML gives a version (a number or an alias) and a size in bytes (1024 or "64KB") as
    # either type; both parameters are strings.
    given = dict(cfg.parameters)
    for name in ("model_version", "mini_batch_size"):
        value = given.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            given[name] = str(value)
    values = SettingsReader(replace(cfg, parameters=given)).parameters(DEFAULT_PARAMETERS)
    if values["model_version"] == "":
        raise r.fail("parameters.model_version", "a version number or an alias, got ''")
    size = values["mini_batch_size"]
    if not MINI_BATCH_SIZE_RE.match(size):
        raise r.fail(
            "parameters.mini_batch_size",
            f"{size!r} must be bytes of CSV per mini-batch, e.g. 1024, 64KB or 1MB",
        )
    for name, low in (("error_threshold", -1), ("process_count_per_node", 1)):
        if values[name] < low:
            raise r.fail(f"parameters.{name}", f"must be an integer >= {low}, got {values[name]!r}")
    return values


def build(cfg: PipelineConfig, compute: str) -> Pipeline:
    """The batch-score pipeline spec for one environment's config."""
    settings = BatchScoreSettings.from_config(cfg)
    values = parameters(cfg)
    scoring_data = DataPathParam(
        DATA_PARAM, settings.input_datastore, settings.input_path, kind="tabular"
    )
    score = ParallelStep(
        name="score",
        source_dir=STEP_DIR,
        entry_script="score.py",
        inputs=[scoring_data],
        output=Output("predictions"),
        arguments=[
            "--model_name",
            Param("model_name", settings.model_name),
            "--model_version",
            Param("model_version", values["model_version"]),
            "--key_column",
            settings.key_column,
        ],
        mini_batch_size=Param("mini_batch_size", values["mini_batch_size"]),
        error_threshold=Param("error_threshold", values["error_threshold"]),
        process_count_per_node=Param("process_count_per_node", values["process_count_per_node"]),
        output_action="append_row",
        append_row_file_name="predictions.txt",
        compute=compute,
        environment=settings.environment,
        # "production" names a moving alias: the same arguments can mean a new model, and new
        # files can land under the same data path, so a reused result could be stale.
        allow_reuse=False,
    )
    return Pipeline(name=cfg.name, steps=[score], description=settings.description)
