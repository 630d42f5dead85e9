"""``amlops export``: what a deploy would submit to Azure ML v1, written offline for review.

The pipelines are registered, compiled and published exactly as ``deploy`` does, but against
the SDK's in-memory pipeline service (see offline.py); each published graph is then written
as one stable, diffable JSON document per pipeline, so a pull request shows what a merge
would publish: step kinds, scripts, computes, environments, and every argument's binding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from amlops.backends.azureml_v1.backend import AzureMLv1Backend
from amlops.backends.azureml_v1.offline import (
    PLACEHOLDER_SUBSCRIPTION,
    SERVICE_ENDPOINT,
    DryRun,
    InMemoryAssets,
    node_parameters,
    offline_workspace,
    sdk_quiet,
)
from amlops.backends.azureml_v1.register import ENV_FINGERPRINT_VAR
from amlops.config import Config
from amlops.content import hash_tree
from amlops.spec import Pipeline

DATASET_ARG, OUTPUT_ARG = "DatasetConsumptionConfig:", "DatasetOutputConfig:"
DEFAULT_DATASTORE = "workspaceblobstore"
PARALLEL_METADATA = "BatchInferencingMetaData"  # only ParallelRunStep nodes carry it
HYPERDRIVE_CONFIG = "HDReuseHashableRunConfig"  # HyperDriveStep's, without telemetry/snapshot
AUTOML_SETTINGS = (  # an AutoMLStep node's parameters worth reviewing (others are SDK defaults)
    "task_type", "primary_metric", "label_column_name", "experiment_timeout_minutes",
    "iteration_timeout_minutes", "iterations", "max_concurrent_iterations", "n_cross_validations",
    "validation_size", "whitelist_models", "blacklist_algos", "enable_early_stopping",
    "intermediate_datasets", "scenario",
)  # fmt: skip


def export_v1(config: Config, pipelines: Sequence[Pipeline], out_dir: Path) -> list[Path]:
    """Write ``<pipeline>.v1.json`` for each pipeline; return the files written.

    A local config's datasets name no datastore: they are taken to be where the local
    workspace keeps them, in the default datastore, workspaceblobstore.
    """
    config = replace(
        config,
        datasets=tuple(
            ds if ds.datastore else replace(ds, datastore=DEFAULT_DATASTORE)
            for ds in config.datasets
        ),
    )
    ws = config.workspace
    workspace = offline_workspace(
        ws.subscription_id or PLACEHOLDER_SUBSCRIPTION,
        ws.resource_group or "offline",
        ws.name or "offline",
    )
    service = DryRun(workspace)
    assets = InMemoryAssets(workspace)
    backend = AzureMLv1Backend(
        workspace,
        config=config,
        assets=assets,
        workflow_provider=service.provider,
        service_endpoint=SERVICE_ENDPOINT,
        pipelines=pipelines,
    )
    documents = []
    with sdk_quiet():
        backend.register_datasets(config.datasets, plan=False)
        backend.register_environments(config.environments, plan=False)
        for pipeline in pipelines:
            [change] = backend.publish([pipeline], plan=False)
            graph_id = change.detail["published_pipeline_id"]
            doc = graph_document(service, assets, graph_id, pipeline)
            documents.append((pipeline.name, doc))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in documents:
        path = out_dir / f"{name}.v1.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def graph_document(
    service: DryRun, assets: InMemoryAssets, published_id: str, pipeline: Pipeline
) -> dict[str, Any]:
    """The published graph as plain JSON: no generated ids, so equal pipelines diff empty."""
    graph, interface = service.published_graph(published_id)
    sources = {step.name: step.source_dir for step in pipeline.steps}
    datasets = {node.id: node for node in graph.dataset_nodes}
    feeds = {  # (module node id, input port) -> the dataset node feeding it, if any
        (e.destination_input_port.node_id, e.destination_input_port.port_name): datasets.get(
            e.source_output_port.node_id
        )
        for e in graph.edges
    }
    steps = []
    for node in graph.module_nodes:
        module = service.module(node)
        params = node_parameters(node)
        ports = _Ports(
            node.id,
            {i.name: i for i in module.structured_interface.inputs},
            {o.name: o for o in module.structured_interface.outputs},
            feeds,
            assets,
        )
        kind = _node_kind(module.name, params)
        hyperdrive = json.loads(params[HYPERDRIVE_CONFIG]) if kind == "HyperDriveStep" else None
        if hyperdrive is not None:
            # The trial's run configuration travels inside the HyperDrive configuration.
            runconfig = hyperdrive["platform_config"]["Definition"]["Overrides"]
        else:
            runconfig = json.loads(node.runconfig or "{}")
        environment = runconfig.get("environment") or {}
        parallel = json.loads(params[PARALLEL_METADATA]) if kind == "ParallelRunStep" else None
        script = {
            "ParallelRunStep": parallel and parallel["EntryScript"],
            "HyperDriveStep": runconfig.get("script"),
            "AutoMLStep": None,  # AutoML runs the service's own code
            "PythonScriptStep": params.get("Script"),
        }[kind]
        step: dict[str, Any] = {
            "name": module.name,
            "kind": kind,
            "script": script,
            "source_hash": hash_tree(sources[module.name])[:16],
            "compute": params.get("Target") or runconfig.get("target") or params.get("target"),
            # By name and definition: the version number is the workspace's to assign.
            "environment": environment.get("name"),
            "environment_fingerprint": (environment.get("environmentVariables") or {}).get(
                ENV_FINGERPRINT_VAR
            ),
            "allow_reuse": bool(module.is_deterministic),
            "arguments": [
                ports.argument(a.value_type, a.value) for a in module.structured_interface.arguments
            ],
            "inputs": [ports.consumed(name) for name in ports.inputs],
            "outputs": sorted(name for name in ports.outputs if not name.startswith("_")),
        }
        if parallel:
            step["parallel"] = {
                k: v for k, v in parallel.items()
                if k not in ("Name", "EntryScript", "EnvironmentVersion", "version")
            }  # fmt: skip
        if hyperdrive is not None:
            step["sweep"] = {
                "sampling": hyperdrive["generator_config"],
                "policy": hyperdrive["policy_config"],
                "primary_metric": hyperdrive["primary_metric_config"],
                "max_total_runs": hyperdrive["max_total_jobs"],
                "max_concurrent_runs": hyperdrive["max_concurrent_jobs"],
                "max_duration_minutes": hyperdrive["max_duration_minutes"],
                "metrics_output": _training_outputs(module, "Metrics"),
            }
        if kind == "AutoMLStep":
            step["automl"] = {k: params.get(k) for k in AUTOML_SETTINGS}
            for key in ("whitelist_models", "blacklist_algos"):
                # The SDK passes the model lists through a set: sorted, so equal configs diff empty.
                if isinstance(step["automl"][key], str):
                    step["automl"][key] = ",".join(sorted(step["automl"][key].split(",")))
            step["automl"]["metrics_output"] = _training_outputs(module, "Metrics")
            step["automl"]["model_output"] = _training_outputs(module, "Model")
        steps.append(step)
    return {
        "name": pipeline.name,
        "description": pipeline.description,
        "parameters": {p.name: p.default_value for p in interface.parameters},
        "data_path_parameters": sorted(p.name for p in interface.data_path_parameter_list or []),
        "steps": steps,
    }


def _node_kind(name: str, params: dict[str, Any]) -> str:
    """Which v1 step built this node, from the parameters only that kind sets."""
    if PARALLEL_METADATA in params:
        return "ParallelRunStep"
    if HYPERDRIVE_CONFIG in params:
        return "HyperDriveStep"
    if "task_type" in params and "primary_metric" in params:
        return "AutoMLStep"
    if "Script" in params:
        return "PythonScriptStep"
    raise ValueError(f"step {name!r}: a node of a kind amlops export does not know")


def _training_outputs(module: Any, kind: str) -> list[str]:
    """The outputs the service fills with a TrainingOutput of ``kind`` (Metrics, Model)."""
    return sorted(
        o.name
        for o in module.structured_interface.outputs
        if o.training_output is not None and o.training_output.training_output_type == kind
    )


@dataclass(frozen=True)
class _Ports:
    """One module node's inputs and outputs, and what feeds each input."""

    node_id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    feeds: dict[tuple[str, str], Any]
    assets: InMemoryAssets

    def argument(self, kind: str, value: Any) -> Any:
        """A structured argument: a literal, or what a reference binds to."""
        if kind == "Parameter":
            return {"type": "parameter", "name": value}
        if kind == "Input":  # a DataPath bound to the compute (DataPathComputeBinding)
            return self.consumed(value)
        if isinstance(value, str) and value.startswith(OUTPUT_ARG):
            name = value[len(OUTPUT_ARG) :]
            return {"type": "output", "name": name, "mode": self.outputs[name].data_store_mode}
        if isinstance(value, str) and value.startswith(DATASET_ARG):
            return self.consumed(value[len(DATASET_ARG) :])
        return value

    def consumed(self, name: str) -> dict[str, Any]:
        """A registered dataset (by version or latest), a dataset parameter, a DataPath, or
        another step's output."""
        entry: dict[str, Any] = {"name": name, "mode": self.inputs[name].data_store_mode}
        feed = self.feeds.get((self.node_id, name))
        definition = feed.serialize() if feed is not None else {}
        if "DataPathParameterName" in definition:
            return {**entry, "type": "datapath", "parameter": definition["DataPathParameterName"]}
        dataset = definition.get("DataSetDefinition") or {}
        if "ParameterName" in dataset:
            return {**entry, "type": "dataset", "parameter": dataset["ParameterName"]}
        reference = (dataset.get("Value") or {}).get("DataSetReference")
        if reference is None:
            return {**entry, "type": "input"}  # another step's output
        registered, kind = self.assets.registered_dataset(reference["Id"])
        return {
            **entry,
            "type": "dataset",
            "dataset": registered,
            "dataset_type": kind,
            "version": reference.get("Version", "latest"),
        }
