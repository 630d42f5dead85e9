"""Build and publish through the SDK's own graph code and its in-memory DryRunServiceCaller.

Faked edges (see conftest): auth token, service discovery, the snapshot upload of step folders,
and the dataset/environment services (OfflineAssets).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aml_offline import (
    CONFIG,
    REPO,
    batch_pipeline,
    chain_pipeline,
    facts,
    import_repo_pipeline,
    make_backend,
    write_config,
)

from amlops.errors import ConfigError


@pytest.fixture
def deployed(workspace, dry_run, assets, project):
    """A backend whose datasets and environment are registered (the register stage ran)."""
    config = write_config(project)
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    return backend


def args(module) -> list[tuple[str, str]]:
    return [(a.value_type, a.value) for a in module.structured_interface.arguments]


def test_script_chain_compiles_to_python_script_steps(deployed, dry_run, project):
    [change] = deployed.publish([chain_pipeline(project)], plan=False)
    assert change.kind == "endpoint" and change.action == "created" and change.version == "0"
    pid = change.detail["published_pipeline_id"]
    assert change.detail["url"].endswith(change.detail["endpoint_id"])
    modules = dry_run.modules(pid)
    assert set(modules) == {"prep", "train"}
    assert args(modules["prep"]) == [
        ("Literal", "--data"), ("Literal", "DatasetConsumptionConfig:diabetes"),
        ("Literal", "--seed"), ("Parameter", "seed"),
        ("Literal", "--out"), ("Literal", "DatasetOutputConfig:prepared"),
    ]  # fmt: skip
    assert args(modules["train"]) == [
        ("Literal", "--prepared"), ("Literal", "DatasetConsumptionConfig:prepared"),
        ("Literal", "--lr"), ("Parameter", "learning_rate"),
        ("Literal", "--seed"), ("Parameter", "seed"),
        ("Literal", "--model"), ("Literal", "DatasetOutputConfig:model"),
        ("Literal", "--trees"), ("Literal", "200"),
    ]  # fmt: skip
    prep_io = modules["prep"].structured_interface
    assert [(i.name, i.data_type_ids_list) for i in prep_io.inputs] == [
        ("diabetes", ["AzureMLDataset"])
    ]
    assert {o.name for o in prep_io.outputs} == {"prepared", "_run_after_output"}
    assert [i.name for i in modules["train"].structured_interface.inputs] == ["prepared"]
    # allow_reuse is carried over: v1 calls it is_deterministic.
    assert modules["prep"].is_deterministic is True
    assert modules["train"].is_deterministic is False
    _, interface = dry_run.published_graph(pid)
    assert {p.name: p.default_value for p in interface.parameters} == {
        "seed": 42,
        "learning_rate": 0.05,
    }
    node = dry_run.node_params(pid, "train")
    assert node["Target"] == "cpu-cluster" and node["MLCComputeType"] == "AmlCompute"
    graph, _ = dry_run.published_graph(pid)
    runconfigs = [n.runconfig for n in graph.module_nodes]
    assert all('"test-env"' in rc or "'test-env'" in rc or "test-env" in rc for rc in runconfigs)
    # The train step reads what prep wrote: one edge from prep's output to train's input.
    assert len(graph.edges) >= 2


def test_parallel_step_compiles_to_parallel_run_step(deployed, dry_run, project):
    [change] = deployed.publish([batch_pipeline(project)], plan=False)
    pid = change.detail["published_pipeline_id"]
    score = dry_run.modules(pid)["score"]
    a = args(score)
    pairs = dict(zip([v for _, v in a[::2]], a[1::2], strict=False))
    assert pairs["--mini_batch_size"] == ("Parameter", "mini_batch_size")
    assert pairs["--error_threshold"] == ("Parameter", "error_threshold")
    assert pairs["--process_count_per_node"] == ("Parameter", "process_count_per_node")
    assert pairs["--run_max_try"] == ("Literal", "2")
    assert pairs["--allowed_failed_percent"] == ("Literal", "5.0")
    assert pairs["--append_row_file_name"] == ("Literal", "predictions.txt")
    assert pairs["--output_action"] == ("Literal", "append_row")
    assert pairs["--model_name"] == ("Parameter", "model_name")
    assert pairs["--input_ds_0"] == ("Literal", "scoring_data")
    assert score.is_deterministic is False
    meta = json.loads(dry_run.node_params(pid, "score")["BatchInferencingMetaData"])
    assert meta["ComputeName"] == "cpu-cluster"
    assert meta["EntryScript"] == "score.py"
    assert meta["NodeCount"] == 2
    assert meta["ProcessCountPerNode"] == 2
    assert meta["MiniBatchSize"] == "1MB"
    assert meta["ErrorThreshold"] == 10
    assert meta["OutputAction"] == "append_row"
    assert meta["EnvironmentName"] == "test-env"
    assert meta["AllowedFailedPercent"] == 5.0
    inputs = {i.name for i in score.structured_interface.inputs}
    assert inputs == {"scoring_data", "lookup"}  # partitioned input + side input
    _, interface = dry_run.published_graph(pid)
    assert {p.name: p.default_value for p in interface.parameters} == {
        "mini_batch_size": "1MB",
        "error_threshold": 10,
        "process_count_per_node": 2,
        "model_name": "diabetes-model",
    }
    # The DataPathParam becomes a dataset parameter a run (or REST call) can point elsewhere.
    assert [p.name for p in interface.data_path_parameter_list] == ["scoring_data"]


def test_publish_twice_adds_no_version_and_a_changed_step_adds_one(deployed, dry_run, project):
    first = deployed.publish([chain_pipeline(project)], plan=False)[0]
    again = deployed.publish([chain_pipeline(project)], plan=False)[0]
    assert again.action == "unchanged" and again.version == "0"
    assert again.detail["published_pipeline_id"] == first.detail["published_pipeline_id"]
    assert len(dry_run.caller._pipeline_entities) == 1

    script = project / "steps" / "train" / "main.py"
    script.write_text("print('train v2')\n")
    plan = deployed.publish([chain_pipeline(project)], plan=True)[0]
    assert (plan.action, plan.version) == ("updated", "1")
    assert len(dry_run.caller._pipeline_entities) == 1  # a plan publishes nothing
    changed = deployed.publish([chain_pipeline(project)], plan=False)[0]
    assert (changed.action, changed.version) == ("updated", "1")
    assert changed.detail["url"] == first.detail["url"]  # same stable endpoint
    assert len(dry_run.caller._pipeline_entities) == 2

    # Reverting the step points the default back at version 0: no third version.
    script.write_text("print('train')\n")
    reverted = deployed.publish([chain_pipeline(project)], plan=False)[0]
    assert (reverted.action, reverted.version) == ("updated", "0")
    assert reverted.detail["reverts"] is True
    assert len(dry_run.caller._pipeline_entities) == 2
    build = deployed.build([chain_pipeline(project)], plan=True)[0]
    assert (build.kind, build.action) == ("pipeline", "unchanged")


def test_new_environment_version_republishes(deployed, project):
    deployed.publish([chain_pipeline(project)], plan=False)
    conda = project / "envs" / "test.yml"
    conda.write_text(conda.read_text().replace("- pandas", "- pandas==2.2.3"))
    [env] = deployed.register_environments(deployed.config.environments, plan=False)
    assert (env.action, env.version) == ("updated", "2")
    [change] = deployed.publish([chain_pipeline(project)], plan=False)
    assert (change.action, change.version) == ("updated", "1")


def test_a_plan_shows_the_endpoint_version_a_new_environment_version_would_add(deployed, project):
    """The plan's register stage would create environment v2; the same plan's publish stage
    must then say what the deploy will do, a new endpoint version, not 'unchanged'."""
    deployed.publish([chain_pipeline(project)], plan=False)
    conda = project / "envs" / "test.yml"
    conda.write_text(conda.read_text().replace("- pandas", "- pandas==2.2.3"))
    [env] = deployed.register_environments(deployed.config.environments, plan=True)
    assert (env.action, env.version) == ("updated", "2")
    [planned] = deployed.publish([chain_pipeline(project)], plan=True)
    assert (planned.action, planned.version) == ("updated", "1")
    deployed.register_environments(deployed.config.environments, plan=False)
    [done] = deployed.publish([chain_pipeline(project)], plan=False)
    assert (done.action, done.version) == (planned.action, planned.version)


def test_build_validates_and_reports(deployed, project):
    changes = deployed.build([chain_pipeline(project), batch_pipeline(project)], plan=False)
    assert [(c.kind, c.name, c.action) for c in changes] == [
        ("pipeline", "chain", "created"),
        ("pipeline", "batch", "created"),
    ]


def test_node_count_above_cluster_max_is_a_config_error(workspace, dry_run, assets, project):
    config = write_config(project)
    backend = make_backend(workspace, config, assets, dry_run, facts=facts(compute_max_nodes=1))
    with pytest.raises(ConfigError, match="node_count 2 is more than compute cluster"):
        backend.build([batch_pipeline(project)], plan=True)


def test_step_without_environment_needs_one_configured(deployed, project):
    from amlops.spec import Pipeline, ScriptStep

    pipeline = Pipeline("bare", [ScriptStep("prep", project / "steps" / "prep")])
    deployed.config = write_config(project, "workspace: {backend: azureml_v1}\n", env="bare")
    with pytest.raises(ConfigError, match="names no environment"):
        deployed.build([pipeline], plan=False)


def test_repo_pipelines_compile_and_publish(workspace, dry_run, assets, project):
    """pipelines/train.py and pipelines/batch_score.py, as config/dev.yml configures them."""
    from amlops.config import load_config

    dev = load_config("dev", REPO)
    built = []
    for cfg in dev.pipelines:
        build = import_repo_pipeline(cfg.name)
        if build is None:
            pytest.fail(
                f"config/dev.yml configures {cfg.name!r}; pipelines/{cfg.name}.py is missing"
            )
        built.append(build(cfg, dev.compute))
    backend = make_backend(workspace, dev, assets, dry_run, pipelines=built)
    backend.register_datasets(dev.datasets, plan=False)
    [env] = backend.register_environments(dev.environments, plan=False)
    # The repo's steps import amlops.runtime: their environment carries the private wheel.
    assert env.detail["private_wheel"] is True and len(assets.wheels) == 1
    changes = backend.publish(built, plan=False)
    assert [c.action for c in changes] == ["created"] * len(built)
    by_name = {c.name: c for c in changes}
    if "train" in by_name:
        modules = dry_run.modules(by_name["train"].detail["published_pipeline_id"])
        assert set(modules) == {"prep", "train", "evaluate", "register"}
    if "batch_score" in by_name:
        modules = dry_run.modules(by_name["batch_score"].detail["published_pipeline_id"])
        assert set(modules) == {"score"}
    assert [c.action for c in backend.publish(built, plan=False)] == ["unchanged"] * len(built)
    assert Path(REPO / "config" / "dev.yml").is_file()


def _dataset_references(dry_run, pid: str) -> list[dict]:
    graph, _ = dry_run.published_graph(pid)
    found = []
    for node in graph.dataset_nodes:
        value = node.serialize()["DataSetDefinition"].get("Value") or {}
        if "DataSetReference" in value:
            found.append(value["DataSetReference"])
    return found


def test_a_published_pipeline_reads_the_latest_dataset_version_at_run_time(
    deployed, dry_run, assets, project
):
    """A schedule on the endpoint sees new data without a redeploy: the graph names the
    dataset and no version. A version the spec pins stays pinned."""
    [change] = deployed.publish([chain_pipeline(project)], plan=False)
    [ref] = _dataset_references(dry_run, change.detail["published_pipeline_id"])
    assert "Version" not in ref and ref["Name"] == "diabetes"

    from amlops.spec import DatasetInput, Output, Pipeline, ScriptStep

    pinned = Pipeline(
        "pinned",
        [ScriptStep("prep", project / "steps" / "prep",
                    arguments=["--data", DatasetInput("diabetes", 1), "--out", Output("o")],
                    environment="test-env")],
    )  # fmt: skip
    [change] = deployed.publish([pinned], plan=False)
    [ref] = _dataset_references(dry_run, change.detail["published_pipeline_id"])
    assert ref["Version"] == "1"


def test_the_compiler_refuses_a_tabular_dataset_in_a_script_step(
    workspace, dry_run, assets, project
):
    """Defence in depth for callers that skip deploy's check: v1 would pass the script an ID."""
    config = write_config(project, CONFIG.replace("    kind: file\n", "    kind: tabular\n", 1))
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    with pytest.raises(ConfigError, match="step 'prep' reads a tabular dataset \\('diabetes'\\)"):
        backend.build([chain_pipeline(project)], plan=False)


def test_tabular_mini_batches_are_text_on_azure_as_locally(workspace, assets, tmp_path):
    """The dataset v1 partitions for a tabular ParallelStep input, as the SDK defines it: read
    delimited, no column types inferred or set, empty fields missing (not ""). So run() gets
    text columns on Azure; the local driver hands over the same, shown on the same CSV."""
    import yaml

    from amlops.backends.azureml_v1.compile import _Bindings
    from amlops.parallel.batching import MiniBatch, load
    from amlops.spec import DataPathParam

    param = _Bindings(workspace, assets, "p").dataset_param(
        DataPathParam("scoring_data", "scoring", "in", kind="tabular"), "p"
    )
    definition = yaml.safe_load(str(param.default_value._dataflow).split("---", 1)[1])
    [transformation] = definition["transformations"]
    read = transformation["read_delimited"]
    assert read["infer_column_types"] is False and read["empty_as_string"] is False

    csv = tmp_path / "rows.csv"
    csv.write_text("row_id,age,sex\n007,59,\n008,,2\n")
    frame = load(MiniBatch(id=0, input="rows", kind="tabular", paths=(str(csv),),
                           start=len("row_id,age,sex\n"),
                           end=csv.stat().st_size))  # fmt: skip
    assert list(frame["row_id"]) == ["007", "008"] and frame["age"][0] == "59"
    assert frame["sex"].isna()[0] and frame["age"].isna()[1]
