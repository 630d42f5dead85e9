"""The batch-score pipeline: one ParallelStep scoring a folder of CSV files with a registered model.

Model name and version, the input data path (a DataPathParam, so a schedule or a REST call can
point it at new data) and the ParallelRunConfig knobs users tune are pipeline parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.config import PipelineConfig
from amlops.errors import ConfigError
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


@dataclass(frozen=True)
class BatchScoreSettings:
    environment: str
    model_name: str
    key_column: str
    input_datastore: str
    input_path: str
    description: str = "Score new data with the production model (ParallelRunStep)"

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> BatchScoreSettings:
        unknown = sorted(set(cfg.settings) - {*REQUIRED, "description"})
        if unknown:
            raise ConfigError(
                f"{cfg.where}.{unknown[0]}: unknown key (allowed: "
                f"{', '.join(sorted({*REQUIRED, 'description'}))})"
            )
        values = {}
        for key in (*REQUIRED, "description"):
            value = cfg.settings.get(key)
            if value is None and key == "description":
                continue
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{cfg.where}.{key}: is required (a non-empty string)")
            values[key] = value
        return cls(**values)


def parameters(cfg: PipelineConfig) -> dict[str, Any]:
    """Parameter defaults from config, checked the way the ParallelRunConfig will use them."""
    unknown = sorted(set(cfg.parameters) - set(DEFAULT_PARAMETERS))
    if unknown:
        raise ConfigError(
            f"{cfg.where}.parameters.{unknown[0]}: not a batch_score parameter "
            f"(known: {', '.join(DEFAULT_PARAMETERS)})"
        )
    values = {**DEFAULT_PARAMETERS, **cfg.parameters}
    where = f"{cfg.where}.parameters"
    version = values["model_version"]
    if isinstance(version, bool) or not isinstance(version, str | int) or str(version) == "":
        raise ConfigError(f"{where}.model_version: a version number or an alias, got {version!r}")
    values["model_version"] = str(version)
    size = values["mini_batch_size"]
    if isinstance(size, bool) or not MINI_BATCH_SIZE_RE.match(str(size)):
        raise ConfigError(
            f"{where}.mini_batch_size: {size!r} must be bytes of CSV per mini-batch, "
            "e.g. 1024, 64KB or 1MB"
        )
    values["mini_batch_size"] = str(size)
    for name, low in (("error_threshold", -1), ("process_count_per_node", 1)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}.{name}: must be an integer >= {low}, got {value!r}")
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
