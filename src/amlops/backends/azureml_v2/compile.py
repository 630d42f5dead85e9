"""Spec -> azure-ai-ml YAML documents: command and parallel components, a pipeline job, and the
same graph as a pipeline component (what a batch deployment runs).

The documents are plain dicts in the shape ``az ml ... create --file`` reads; export writes them
as they are, deploy loads them back through azure-ai-ml's own loaders (``load_component``,
``load_job``), so the SDK's schema and validation see exactly what a reviewer reads.

ScriptStep -> command component (``${{inputs.x}}`` / ``${{outputs.y}}`` in the command, code =
the step folder, ``allow_reuse`` -> ``is_deterministic``); ParallelStep -> parallel component
with a ``run_function`` task; Param -> pipeline input; DataPathParam -> a ``uri_folder`` (file)
or ``mltable`` (tabular) pipeline input on ``azureml://datastores/<ds>/paths/<path>``;
Output/.as_input() -> ``uri_folder`` outputs/inputs; DatasetInput -> a data asset input.
SweepStep -> a sweep node whose trial is a command component (each searched hyperparameter an
input appended as ``--<name> ${{inputs.<name>}}``); AutoMLStep -> an automl node (no component).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amlops.backends.base import unsupported_step
from amlops.binding import id_binding
from amlops.errors import ConfigError
from amlops.spec import (
    AutoMLStep,
    DataPathParam,
    DatasetInput,
    InputRef,
    Output,
    ParallelStep,
    Param,
    Pipeline,
    ScriptStep,
    SearchParam,
    Step,
    SweepStep,
)

BACKEND = "azureml_v2"
SCHEMA = "https://azuremlschemas.azureedge.net/latest"
# v1 data modes -> v2 input modes (v2 inputs are mounted read-only; outputs read-write).
INPUT_MODES = {"mount": "ro_mount", "download": "download"}
PARAM_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
# Settings v2 holds as plain integers on a parallel node (azure/ai/ml/_schema/job/
# parameterized_parallel.py: error_threshold, mini_batch_error_threshold,
# max_concurrency_per_instance are fields.Integer, not data bindings): a Param there is fixed
# to its default when the pipeline is compiled. mini_batch_size and retry_settings bind.
FIXED_AT_PUBLISH = (
    "error_threshold",
    "allowed_failed_count",
    "process_count_per_node",
    "node_count",
)


@dataclass(frozen=True)
class Refs:
    """How the compiled documents name workspace things (deploy: real versions; export: labels).

    ``environment(name)`` -> ``azureml:<name>:<version>`` or ``azureml:<name>@latest``;
    ``dataset(input)`` -> ``(azureml:<name>:<version>|@latest, file|tabular)``;
    ``datastore(name)`` -> the datastore's name in the workspace;
    ``code(step)`` -> the component's ``code:`` (a folder relative to the component file, or
    the URL of an uploaded snapshot).
    """

    environment: Callable[[str], str]
    dataset: Callable[[DatasetInput], tuple[str, str]]
    datastore: Callable[[str], str]
    code: Callable[[Step], str]


@dataclass
class Compiled:
    """One pipeline as azure-ai-ml documents."""

    name: str
    components: dict[str, dict[str, Any]]  # step name -> component document
    job: dict[str, Any]  # the pipeline job (pipeline.yml)
    pipeline_component: dict[str, Any]  # the same graph as a pipeline component
    fixed: dict[str, Any] = field(default_factory=dict)  # "<step>.<setting>" -> value fixed


def expr(path: str) -> str:
    """An azure-ai-ml data binding, e.g. ``${{inputs.seed}}``."""
    return "${{" + path + "}}"


def component_name(pipeline: str, step: str) -> str:
    """v2 component names are lower case letters, digits and underscores."""
    return re.sub(r"[^a-z0-9_]", "_", f"{pipeline}_{step}".lower())


def compile_pipeline(
    pipeline: Pipeline,
    *,
    compute: str,
    default_environment: str | None,
    refs: Refs,
    component_file: Callable[[Step], str] = lambda s: f"./components/{s.name}.yml",
) -> Compiled:
    """The documents for ``pipeline``; a step kind without a compiler fails by name."""
    compiled = Compiled(pipeline.name, {}, {}, {})
    jobs: dict[str, dict[str, Any]] = {}
    for step in pipeline.ordered_steps():
        compiler = V2_STEP_KINDS.get(type(step))
        if compiler is None:
            raise unsupported_step(BACKEND, step, pipeline)
        env = step.environment or default_environment
        if env is None:
            raise ConfigError(
                f"pipeline {pipeline.name!r}: step {step.name!r} names no environment and none "
                "is configured (add one under environments: in config)"
            )
        ctx = _Step(pipeline, step, refs, refs.environment(env), compiled.fixed)
        _refuse_tuning_outputs(pipeline, step)
        component, node = compiler(ctx)
        key = COMPONENT_KEY[node["type"]]
        if key is not None:
            compiled.components[step.name] = component
            node[key] = component_file(step)
        node["compute"] = f"azureml:{step.compute or compute}"
        jobs[step.name] = node
    # Only parameters some node binds become pipeline inputs: a Param fixed at publish (see
    # FIXED_AT_PUBLISH) is not offered, so setting it per run is refused, not ignored.
    bound = {
        m.group(1)
        for node in jobs.values()
        for value in [*node.get("inputs", {}).values(), node.get("mini_batch_size")]
        if isinstance(value, str) and (m := re.fullmatch(r"\$\{\{parent\.inputs\.(\w+)\}\}", value))
    }
    job_inputs, component_inputs = _pipeline_inputs(pipeline, refs, bound)
    compiled.job = {
        "$schema": f"{SCHEMA}/pipelineJob.schema.json",
        "type": "pipeline",
        "display_name": pipeline.name,
        "experiment_name": pipeline.name,
        "description": pipeline.description or pipeline.name,
        "settings": {"default_compute": f"azureml:{compute}"},
        "inputs": job_inputs,
        "jobs": jobs,
    }
    compiled.pipeline_component = {
        "$schema": f"{SCHEMA}/pipelineComponent.schema.json",
        "type": "pipeline",
        "name": component_name(pipeline.name, "pipeline"),
        "display_name": pipeline.name,
        "description": pipeline.description or pipeline.name,
        "inputs": component_inputs,
        "jobs": jobs,
    }
    return compiled


def _pipeline_inputs(pipeline: Pipeline, refs: Refs, bound: set[str]) -> tuple[dict, dict]:
    """(pipeline job inputs: values, pipeline component inputs: typed with defaults)."""
    job: dict[str, Any] = {}
    component: dict[str, Any] = {}
    for p in pipeline.parameters:
        if p.name not in bound:
            continue
        if isinstance(p, Param):
            job[p.name] = p.default
            component[p.name] = {"type": PARAM_TYPES[type(p.default)], "default": p.default}
        else:
            value = datapath_input(p, refs.datastore)
            job[p.name] = value
            # A data input of a pipeline component has no default in v2: the invocation (REST
            # body, schedule) gives it; the deployment's default job gives the path above.
            component[p.name] = {"type": value["type"], "mode": value["mode"]}
    return job, component


def datapath_input(p: DataPathParam, datastore: Callable[[str], str]) -> dict[str, Any]:
    """The pipeline input a DataPathParam is, on its default path; ``datastore`` maps a config
    datastore name to the workspace's."""
    store = datastore(p.datastore)
    # A tabular path is read as rows: an mltable input, which needs an MLTable file in the
    # folder (v1 built a tabular dataset over the path on the fly; v2 reads the folder's own).
    kind = "mltable" if p.kind == "tabular" else "uri_folder"
    mode = "eval_mount" if kind == "mltable" else INPUT_MODES[p.mode]
    return {
        "type": kind,
        "path": f"azureml://datastores/{store}/paths/{p.path.strip('/')}",
        "mode": mode,
    }


@dataclass
class _Step:
    pipeline: Pipeline
    step: Step
    refs: Refs
    environment: str
    fixed: dict[str, Any]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # component inputs
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    bound: dict[str, Any] = field(default_factory=dict)  # node inputs

    def bind(self, item: Any, *, partitioned: bool = False) -> str:
        """A command-line token for ``item``: a literal, ``${{inputs.x}}`` or ``${{outputs.y}}``."""
        if isinstance(item, Param):
            self.inputs[item.name] = {"type": PARAM_TYPES[type(item.default)]}
            self.bound[item.name] = expr(f"parent.inputs.{item.name}")
            return expr(f"inputs.{item.name}")
        if isinstance(item, DataPathParam):
            value = datapath_input(item, self.refs.datastore)
            self.inputs[item.name] = {"type": value["type"], "mode": value["mode"]}
            self.bound[item.name] = expr(f"parent.inputs.{item.name}")
            return expr(f"inputs.{item.name}")
        if isinstance(item, Output):
            self.outputs[item.name] = {"type": "uri_folder", "mode": "rw_mount"}
            return expr(f"outputs.{item.name}")
        if isinstance(item, InputRef):
            producer = self.pipeline.producer_of(item.output).name
            self.inputs[item.name] = {"type": "uri_folder", "mode": "ro_mount"}
            self.bound[item.name] = expr(f"parent.jobs.{producer}.outputs.{item.output.name}")
            return expr(f"inputs.{item.name}")
        if isinstance(item, DatasetInput):
            ref, kind = self.refs.dataset(item)
            if not partitioned and (kind == "tabular" or item.mode == "direct"):
                raise id_binding(f"pipeline {self.pipeline.name!r}", self.step, item,
                                 tabular=kind == "tabular")  # fmt: skip
            asset_type = "mltable" if kind == "tabular" else "uri_folder"
            mode = (
                "eval_mount" if asset_type == "mltable" else INPUT_MODES.get(item.mode, "ro_mount")
            )
            self.inputs[item.input_name] = {"type": asset_type, "mode": mode}
            self.bound[item.input_name] = {"type": asset_type, "path": ref, "mode": mode}
            return expr(f"inputs.{item.input_name}")
        return shlex.quote(str(item))

    def header(self, kind: str) -> dict[str, Any]:
        return {
            "$schema": f"{SCHEMA}/{kind}Component.schema.json",
            "type": kind,
            "name": component_name(self.pipeline.name, self.step.name),
            "display_name": self.step.name,
            "is_deterministic": self.step.allow_reuse,
        }


def _script_step(ctx: _Step) -> tuple[dict[str, Any], dict[str, Any]]:
    step = ctx.step
    assert isinstance(step, ScriptStep)
    tokens = [ctx.bind(a) for a in step.arguments]
    for item in (*step.all_inputs(), *step.all_outputs()):
        ctx.bind(item)  # inputs/outputs not named in arguments still reach the step
    component = _command_component(ctx, step, tokens)
    node = {"type": "command", "inputs": dict(ctx.bound)}
    return component, node


def _parallel_step(ctx: _Step) -> tuple[dict[str, Any], dict[str, Any]]:
    step = ctx.step
    assert isinstance(step, ParallelStep) and step.output is not None
    if len(step.inputs) != 1:
        raise ConfigError(
            f"pipeline {ctx.pipeline.name!r}: step {step.name!r}: v2 parallel jobs partition one "
            f"input (input_data), this ParallelStep partitions {len(step.inputs)}"
        )
    if step.allowed_failed_percent is not None and step.allowed_failed_count is not None:
        raise ConfigError(
            f"pipeline {ctx.pipeline.name!r}: step {step.name!r}: v2 takes one mini-batch "
            "failure limit; set allowed_failed_count or allowed_failed_percent, not both"
        )
    [data] = step.inputs
    data_token = ctx.bind(data, partitioned=True)
    user = [ctx.bind(a) for a in step.arguments]
    for item in step.all_inputs():
        if item is not data:
            ctx.bind(item)
    out = ctx.bind(step.output)
    driver: list[str] = []
    if step.allowed_failed_percent is not None:
        # No v2 field; the parallel driver reads it from its command line, as in v1.
        driver += ["--allowed_failed_percent", _fixed(ctx, "allowed_failed_percent")]
    if step.append_row_file_name:
        driver += ["--append_row_file_name", shlex.quote(step.append_row_file_name)]
    task: dict[str, Any] = {
        "type": "run_function",
        "code": ctx.refs.code(step),
        "entry_script": step.entry_script,
        "environment": ctx.environment,
    }
    program_arguments = " ".join([*user, *driver])
    if program_arguments:
        task["program_arguments"] = program_arguments
    if step.output_action == "append_row":
        # On the task: parallel_run_function(append_row_to=...) accepts it and drops it
        # (azure/ai/ml/entities/_builders/parallel_func.py has no such parameter; the
        # RunFunction task does: entities/_job/parallel/run_function.py).
        task["append_row_to"] = out
    component: dict[str, Any] = {
        **ctx.header("parallel"),
        "inputs": ctx.inputs,
        "outputs": ctx.outputs,
        "input_data": data_token,
        "error_threshold": _fixed(ctx, "error_threshold"),
        "mini_batch_error_threshold": (
            _fixed(ctx, "allowed_failed_count") if step.allowed_failed_count is not None else -1
        ),
        "logging_level": "INFO",
        "retry_settings": {
            "timeout": _bindable(ctx, step.run_invocation_timeout),
            "max_retries": _bindable(ctx, step.run_max_try),
        },
        "task": task,
    }
    if step.process_count_per_node is not None:
        component["max_concurrency_per_instance"] = _fixed(ctx, "process_count_per_node")
    node: dict[str, Any] = {
        "type": "parallel",
        "inputs": dict(ctx.bound),
        "resources": {"instance_count": _fixed(ctx, "node_count")},
    }
    size = step.mini_batch_size
    if isinstance(size, Param):
        # The node's mini_batch_size takes a binding (entities/_builders/parallel.py).
        ctx.bind(size)
        node["inputs"][size.name] = expr(f"parent.inputs.{size.name}")
        node["mini_batch_size"] = expr(f"parent.inputs.{size.name}")
        component["mini_batch_size"] = str(size.default)
    elif size is not None:
        component["mini_batch_size"] = str(size)
    return component, node


def _fixed(ctx: _Step, setting: str) -> Any:
    """A setting v2 takes only as a number: a Param's default, recorded for the build summary."""
    value = getattr(ctx.step, setting)
    if isinstance(value, Param):
        ctx.fixed[f"{ctx.step.name}.{setting}"] = value.default
        return value.default
    return value


def _bindable(ctx: _Step, value: Any) -> Any:
    """retry_settings take a binding to the component's own input."""
    return ctx.bind(value) if isinstance(value, Param) else value


def _refuse_tuning_outputs(pipeline: Pipeline, step: Step) -> None:
    """A step reading what v2's AutoML node does not write in the same form. (A sweep's or
    AutoML's metrics_output is refused itself, before any step reading it compiles.)"""
    for item in step.all_inputs():
        if not isinstance(item, InputRef):
            continue
        producer = pipeline.producer_of(item.output)
        if isinstance(producer, AutoMLStep) and item.output == producer.model_output:
            raise ConfigError(
                f"pipeline {pipeline.name!r}: step {step.name!r} reads {item.output.name!r}, the "
                f"model_output of AutoMLStep {producer.name!r}; on v2 that is AutoML's "
                "best_model, an MLflow model of AutoML's own pipeline classes, not the model "
                "folder (model.pkl, schema.json) the local AutoML writes"
            )


def _search_input_type(p: SearchParam) -> str:
    """The trial component's input type for a searched hyperparameter."""
    if p.expression == "randint":
        return "integer"
    if p.expression != "choice":
        return "number"
    kinds = {type(v) for v in p.values}
    for python_type in (bool, int, str):
        if kinds == {python_type}:
            return PARAM_TYPES[python_type]
    if kinds <= {int, float}:
        return "number"
    return "string"


# v1's expression arguments by the names v2's search space gives them (azure/ai/ml/_schema/
# _sweep/search_space/*.py).
SEARCH_FIELDS = {
    "uniform": ("min_value", "max_value"),
    "loguniform": ("min_value", "max_value"),
    "quniform": ("min_value", "max_value", "q"),
    "qloguniform": ("min_value", "max_value", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "randint": ("upper",),
}


def _search_space(p: SearchParam) -> dict[str, Any]:
    if p.expression == "choice":
        return {"type": "choice", "values": list(p.values)}
    return {"type": p.expression, **dict(zip(SEARCH_FIELDS[p.expression], p.values, strict=True))}


def _command_component(ctx: _Step, step: ScriptStep | SweepStep, tokens: list[str]) -> dict:
    """A command component running the step's script with ``tokens`` as its arguments."""
    return {
        **ctx.header("command"),
        "code": ctx.refs.code(step),
        "environment": ctx.environment,
        "inputs": ctx.inputs,
        "outputs": ctx.outputs,
        "command": " ".join(["python", shlex.quote(step.script), *tokens]),
    }


def _sweep_step(ctx: _Step) -> tuple[dict[str, Any], dict[str, Any]]:
    step = ctx.step
    assert isinstance(step, SweepStep)
    if step.metrics_output is not None:
        raise ConfigError(
            f"pipeline {ctx.pipeline.name!r}: step {step.name!r}: a v2 sweep node has no "
            "metrics_output (the trials' metrics stay in the workspace's MLflow); drop it"
        )
    tokens = [ctx.bind(a) for a in step.arguments]
    for item in (*step.all_inputs(), *step.trial_outputs()):
        ctx.bind(item)
    # The sweep node sets these inputs per trial; the command passes them as HyperDrive did.
    for p in step.search_space:
        ctx.inputs[p.name] = {"type": _search_input_type(p)}
        tokens += [f"--{p.name}", expr(f"inputs.{p.name}")]
    component = _command_component(ctx, step, tokens)
    node: dict[str, Any] = {
        "type": "sweep",
        "inputs": dict(ctx.bound),
        "sampling_algorithm": step.sampling,
        "search_space": {p.name: _search_space(p) for p in step.search_space},
        "objective": {"goal": step.primary_metric_goal, "primary_metric": step.primary_metric_name},
        "limits": {
            "max_total_trials": step.max_total_runs,
            "max_concurrent_trials": step.max_concurrent_runs or step.max_total_runs,
            "timeout": 60 * step.max_duration_minutes,
        },
    }
    et = step.early_termination
    if et is not None:
        settings = {
            "slack_factor": et.slack_factor,
            "slack_amount": et.slack_amount,
            "truncation_percentage": et.truncation_percentage,
        }
        node["early_termination"] = {
            "type": et.policy,
            "evaluation_interval": et.evaluation_interval,
            "delay_evaluation": et.delay_evaluation,
            **{k: v for k, v in settings.items() if v is not None},
        }
    return component, node


def _v2_metric(name: str) -> str:
    """Azure's v1 metric name (AUC_weighted) as v2's YAML spells it (auc_weighted)."""
    from azure.ai.ml._utils.utils import camel_to_snake
    from azure.ai.ml.automl import ClassificationPrimaryMetrics, RegressionPrimaryMetrics

    plain = name.replace("_", "").lower()
    for metric in (*ClassificationPrimaryMetrics, *RegressionPrimaryMetrics):
        if metric.value.lower() == plain:
            return camel_to_snake(metric.value)
    raise ConfigError(f"primary_metric {name!r} has no azure-ai-ml name")


def _automl_step(ctx: _Step) -> tuple[dict[str, Any], dict[str, Any]]:
    step = ctx.step
    assert isinstance(step, AutoMLStep)
    where = f"pipeline {ctx.pipeline.name!r}: step {step.name!r}"
    if step.metrics_output is not None:
        raise ConfigError(
            f"{where}: a v2 automl node has no metrics_output (its trials' metrics stay in the "
            "workspace's MLflow); drop it"
        )
    data = step.training_data
    if isinstance(data, InputRef):
        raise ConfigError(
            f"{where}: a v2 AutoML node reads an mltable input, and {data.output.name!r} is a "
            "step's output folder without an MLTable file; train on a tabular dataset instead"
        )
    assert isinstance(data, DatasetInput)
    ref, kind = ctx.refs.dataset(data)
    if kind != "tabular":
        raise ConfigError(
            f"{where}: a v2 AutoML node reads an mltable input, and dataset {data.dataset!r} is "
            "a file dataset; register it with kind: tabular"
        )
    limits: dict[str, Any] = {
        "timeout_minutes": step.experiment_timeout_minutes,
        "max_trials": step.iterations,
        "max_concurrent_trials": step.max_concurrent_iterations,
        "enable_early_termination": step.enable_early_stopping,
    }
    if step.iteration_timeout_minutes is not None:
        limits["trial_timeout_minutes"] = step.iteration_timeout_minutes
    node: dict[str, Any] = {
        "type": "automl",
        "task": step.task,
        "primary_metric": _v2_metric(step.primary_metric),  # type: ignore[arg-type]
        "target_column_name": step.label_column_name,
        "training_data": {"type": "mltable", "path": ref},
        "limits": limits,
    }
    if step.n_cross_validations is not None:
        node["n_cross_validations"] = step.n_cross_validations
    if step.validation_size is not None:
        node["validation_data_size"] = step.validation_size
    training = {
        "allowed_training_algorithms": list(step.allowed_models),
        "blocked_training_algorithms": list(step.blocked_models),
    }
    training = {k: v for k, v in training.items() if v}
    if training:
        node["training"] = training
    return {}, node


# Where a node names its component file: a sweep's is its trial; an automl node has none.
COMPONENT_KEY = {"command": "component", "parallel": "component", "sweep": "trial", "automl": None}

# One compiler per spec step kind; a kind missing here is refused by name at build time.
V2_STEP_KINDS: dict[type, Callable[[_Step], tuple[dict[str, Any], dict[str, Any]]]] = {
    ScriptStep: _script_step,
    ParallelStep: _parallel_step,
    SweepStep: _sweep_step,
    AutoMLStep: _automl_step,
}
