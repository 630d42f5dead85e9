"""A pipeline spec survives its JSON document: what a published local endpoint rebuilds from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO

from amlops.config import load_config
from amlops.deploy import build_pipelines
from amlops.spec import (
    AutoMLStep,
    DataPathParam,
    DatasetInput,
    EarlyTermination,
    Output,
    ParallelStep,
    Param,
    Pipeline,
    ScriptStep,
    SearchParam,
    SpecError,
    SweepStep,
)
from amlops.specjson import document_fingerprint, pipeline_document, pipeline_from_document


def round_trip(pipeline: Pipeline) -> Pipeline:
    document = json.loads(json.dumps(pipeline_document(pipeline)))  # as stored: plain JSON
    sources = {s.name: s.source_dir for s in pipeline.steps}
    return pipeline_from_document(document, sources)


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_every_configured_pipeline_round_trips(env):
    for pipeline in build_pipelines(load_config(env, REPO)):
        again = round_trip(pipeline)
        assert again == pipeline
        assert document_fingerprint(pipeline_document(again)) == document_fingerprint(
            pipeline_document(pipeline)
        )


def test_every_kind_of_value_round_trips(tmp_path: Path):
    (tmp_path / "main.py").write_text("")
    (tmp_path / "score.py").write_text("")
    prepared = Output("prepared")
    data = DataPathParam("rows", "store", "in/rows", mode="download", kind="tabular")
    pipeline = Pipeline(
        "all-kinds",
        [
            ScriptStep(
                name="prep",
                source_dir=tmp_path,
                arguments=[
                    "--data", DatasetInput("diabetes", 3, name="raw", mode="download"),
                    "--other", DatasetInput("other.set"),
                    "--alpha", Param("alpha", 0.5), "--flag", Param("flag", True),
                    "--n", 7, "--ratio", 0.25, "--out", prepared,
                ],
                allow_reuse=False,
                compute="gpu",
                environment="env",
            ),
            ParallelStep(
                name="score",
                source_dir=tmp_path,
                inputs=[data],
                side_inputs=[prepared.as_input("side")],
                output=Output("scores"),
                arguments=["--k", Param("k", "v")],
                mini_batch_size=Param("mini_batch_size", "1MB"),
                error_threshold=-1,
                allowed_failed_percent=12.5,
                output_action="summary_only",
                run_max_try=Param("tries", 2),
            ),
        ],
        description="every value kind",
    )  # fmt: skip
    assert round_trip(pipeline) == pipeline


def test_tuning_steps_round_trip(tmp_path: Path):
    (tmp_path / "main.py").write_text("")
    prepared, metrics = Output("prepared"), Output("metrics")
    space = [
        SearchParam("lr", "loguniform", (-6, -1)),
        SearchParam("depth", "choice", (2, 3, "auto", True)),
        SearchParam("seed", "randint", (10,)),
        SearchParam("alpha", "qnormal", (0.0, 1.5, 0.25)),
    ]
    pipeline = Pipeline(
        "tuning",
        [
            ScriptStep("prep", tmp_path, arguments=["--out", prepared]),
            SweepStep(
                name="sweep",
                source_dir=tmp_path,
                arguments=["--data", prepared.as_input(), "--model", Output("model")],
                search_space=space,
                sampling="random",
                primary_metric_name="val rmse",
                primary_metric_goal="minimize",
                max_total_runs=8,
                max_concurrent_runs=2,
                early_termination=EarlyTermination("bandit", 2, 1, slack_amount=0.5),
                metrics_output=metrics,
                seed=7,
            ),
            AutoMLStep(
                name="automl",
                training_data=prepared.as_input("training"),
                metrics_output=Output("automl_metrics"),
                model_output=Output("automl_model"),
                task="classification",
                primary_metric="AUC_weighted",
                label_column_name="label",
                blocked_models=["KNN"],
                iterations=5,
                validation_size=0.25,
            ),
        ],
    )
    again = round_trip(pipeline)
    assert again == pipeline
    assert again.steps[1].search_space[1].values == (2, 3, "auto", True)
    assert again.steps[2].source_dir == pipeline.steps[2].source_dir


def test_a_step_kind_it_does_not_know_is_named(tmp_path: Path):
    (tmp_path / "main.py").write_text("")
    document = pipeline_document(Pipeline("p", [ScriptStep("s", tmp_path)]))
    document["steps"][0]["type"] = "MysteryStep"
    with pytest.raises(SpecError, match="step 's' is a MysteryStep, not a step kind"):
        pipeline_from_document(document, {"s": tmp_path})
