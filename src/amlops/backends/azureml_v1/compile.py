"""Spec -> azureml-pipeline-core objects, one mechanical mapping per spec class.

ScriptStep -> PythonScriptStep, ParallelStep -> ParallelRunStep + ParallelRunConfig,
SweepStep -> HyperDriveStep + HyperDriveConfig(run_config=ScriptRunConfig), AutoMLStep ->
AutoMLStep + AutoMLConfig; Output -> OutputFileDatasetConfig (``.as_input()`` to consume; an
output the service fills, a TrainingOutput, -> PipelineData), Param -> PipelineParameter,
DataPathParam -> (PipelineParameter(DataPath), DataPathComputeBinding), DatasetInput -> a
registered dataset ``.as_named_input``; environment -> RunConfiguration; compute by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from amlops.backends.base import unsupported_step
from amlops.binding import id_binding
from amlops.errors import ConfigError
from amlops.spec import (
    AutoMLStep,
    DataPathParam,
    DatasetInput,
    EarlyTermination,
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

AML_COMPUTE = "AmlCompute"
NUMBER_CHECKED = ("error_threshold", "allowed_failed_count", "allowed_failed_percent")


class Resolver(Protocol):
    """Workspace assets a compiled pipeline points at (real: read from the workspace)."""

    def datastore(self, name: str) -> Any: ...

    def dataset(self, name: str, version: str | int) -> Any: ...

    def environment(self, name: str) -> Any: ...

    def default_datastore(self) -> Any: ...

    def saved(self, dataset: Any) -> Any:
        """The dataset with a saved definition id (v1 graphs reference datasets by id)."""

    def compute(self, name: str) -> Any:
        """The compute target object (AutoMLConfig takes an object and checks it exists)."""


@dataclass
class _Bindings:
    """One v1 object per spec object, so every step sees the same parameter and output."""

    workspace: Any
    resolve: Resolver
    pipeline: str
    params: dict[str, Any] = field(default_factory=dict)
    datapaths: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    dataset_params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    training_outputs: dict[str, str] = field(default_factory=dict)  # output name -> TrainingOutput
    environment_variables: dict[str, str] = field(default_factory=dict)  # see compile_pipeline

    def param(self, p: Param) -> Any:
        from azureml.pipeline.core import PipelineParameter

        if p.name not in self.params:
            self.params[p.name] = PipelineParameter(name=p.name, default_value=p.default)
        return self.params[p.name]

    def datapath(self, p: DataPathParam, pipeline: str) -> tuple[Any, Any]:
        from azureml.data.datapath import DataPath, DataPathComputeBinding
        from azureml.pipeline.core import PipelineParameter

        if p.name in self.dataset_params:
            raise _both_kinds(pipeline, p.name)
        if p.name not in self.datapaths:
            default = DataPath(
                datastore=self.resolve.datastore(p.datastore), path_on_datastore=p.path
            )
            self.datapaths[p.name] = (
                PipelineParameter(name=p.name, default_value=default),
                DataPathComputeBinding(mode=p.mode),
            )
        return self.datapaths[p.name]

    def dataset_param(self, p: DataPathParam, pipeline: str) -> Any:
        """A DataPathParam read by a ParallelStep: v1 partitions only datasets, so the
        parameter's default is a dataset over the same DataPath (overridable per run)."""
        from azureml.core import Dataset
        from azureml.data.datapath import DataPath
        from azureml.pipeline.core import PipelineParameter

        if p.name in self.datapaths:
            raise _both_kinds(pipeline, p.name)
        if p.name not in self.dataset_params:
            path = DataPath(datastore=self.resolve.datastore(p.datastore), path_on_datastore=p.path)
            if p.kind == "tabular":
                # No validation or type inference: both read the data, which compile must not.
                ds = Dataset.Tabular.from_delimited_files(
                    path=path, validate=False, infer_column_types=False
                )
            else:
                ds = Dataset.File.from_files(path=path, validate=False)
            self.dataset_params[p.name] = PipelineParameter(
                name=p.name, default_value=self.resolve.saved(ds)
            )
        return self.dataset_params[p.name]

    def output(self, o: Output) -> Any:
        from azureml.data import OutputFileDatasetConfig

        if o.name not in self.outputs:
            self.outputs[o.name] = OutputFileDatasetConfig(name=o.name)
        return self.outputs[o.name]

    def training_output(self, o: Output, kind: str) -> Any:
        """An output the service fills (HyperDrive's metrics, AutoML's metrics or best model):
        v1 takes only PipelineData with a TrainingOutput there, and the steps reading it
        then bind that PipelineData (compiled producers first: steps are in graph order)."""
        from azureml.pipeline.core import PipelineData, TrainingOutput

        if o.name in self.outputs:
            raise ConfigError(
                f"pipeline {self.pipeline!r}: output {o.name!r} is both a step output and a {kind} "
                "training output"
            )
        self.outputs[o.name] = PipelineData(
            o.name, datastore=self.resolve.default_datastore(), training_output=TrainingOutput(kind)
        )
        self.training_outputs[o.name] = kind
        return self.outputs[o.name]


def _both_kinds(pipeline: str, name: str) -> ConfigError:
    return ConfigError(
        f"pipeline {pipeline!r}: DataPathParam {name!r} is read by both a ScriptStep and a "
        "ParallelStep; v1 binds it as a DataPath for one and a dataset for the other, so give "
        "each its own parameter"
    )


def compile_pipeline(
    pipeline: Pipeline,
    workspace: Any,
    *,
    compute: str,
    resolve: Resolver,
    default_environment: str | None,
    workflow_provider: Any = None,
    service_endpoint: str | None = None,
    environment_variables: Mapping[str, str] | None = None,
) -> Any:
    """Build the azureml ``Pipeline`` for ``pipeline``; nothing is uploaded or submitted.

    ``environment_variables`` are set in every step's job (``RunConfiguration.
    environment_variables``, which a ParallelRunConfig's are copied into): what amlops.runtime
    reads on Azure that the AML job itself does not tell a step, such as AMLOPS_GIT_COMMIT.
    """
    from azureml.pipeline.core import Pipeline as AmlPipeline

    b = _Bindings(workspace, resolve, pipeline.name)
    b.environment_variables.update(environment_variables or {})
    steps = [
        _compile_step(step, b, pipeline.name, compute, default_environment)
        for step in pipeline.ordered_steps()
    ]
    return AmlPipeline(
        workspace,
        steps,
        description=pipeline.description or pipeline.name,
        default_datastore=resolve.default_datastore(),
        _workflow_provider=workflow_provider,
        _service_endpoint=service_endpoint,
    )


def _environment(step: Step, b: _Bindings, pipeline: str, default: str | None) -> Any:
    name = step.environment or default
    if name is None:
        raise ConfigError(
            f"pipeline {pipeline!r}: step {step.name!r} names no environment and none is "
            "configured (add one under environments: in config)"
        )
    return b.resolve.environment(name)


def _compile_step(
    step: Step, b: _Bindings, pipeline: str, compute: str, default_env: str | None
) -> Any:
    compiler = V1_STEP_KINDS.get(type(step))
    if compiler is None:
        raise unsupported_step("azureml_v1", step)
    env = _environment(step, b, pipeline, default_env)
    _check_model_readers(step, b, env)
    return compiler(step, b, pipeline, step.compute or compute, env)


AUTOML_RUNTIME = "azureml-automl-runtime"


def _check_model_readers(step: Step, b: _Bindings, env: Any) -> None:
    """AutoML's best model (TrainingOutput "Model") is one pickle of AutoML's own pipeline
    classes: a step can load it only in an environment with AutoML's runtime. amlops' model
    folder (model.pkl + schema.json, scikit-learn) is what the local stand-in writes instead."""
    conda = env.python.conda_dependencies
    pip = [str(p) for p in conda.pip_packages] if conda is not None else []
    if any(re.split(r"[\s<>=!~;\[]", p.strip(), maxsplit=1)[0] == AUTOML_RUNTIME for p in pip):
        return
    for item in step.all_inputs():
        if isinstance(item, InputRef) and b.training_outputs.get(item.output.name) == "Model":
            raise ConfigError(
                f"pipeline {b.pipeline!r}: step {step.name!r} reads {item.output.name!r}, an "
                f"AutoMLStep's model_output, which on Azure ML v1 is AutoML's pickled model file "
                f"and loads only with {AUTOML_RUNTIME}, not in environment {env.name!r}; run "
                "this pipeline locally, or give that step an environment with AutoML's runtime"
            )


def _script_step(step: ScriptStep, b: _Bindings, pipeline: str, compute: str, env: Any) -> Any:
    from azureml.core.runconfig import RunConfiguration
    from azureml.pipeline.steps import PythonScriptStep

    arguments, inputs = _bind_script_arguments(step, b, pipeline)
    outputs = [b.output(o) for o in step.all_outputs()]
    runconfig = RunConfiguration()
    runconfig.environment = env
    runconfig.target = compute
    runconfig.environment_variables.update(b.environment_variables)
    return PythonScriptStep(
        name=step.name,
        script_name=step.script,
        source_directory=str(step.source_dir),
        arguments=arguments,
        inputs=inputs,
        outputs=outputs,
        compute_target=(compute, AML_COMPUTE),  # by name: no workspace lookup at build time
        runconfig=runconfig,
        allow_reuse=step.allow_reuse,
    )


def _consume(
    item: InputRef | DatasetInput, b: _Bindings, step: Step, *, partitioned: bool = False
) -> Any:
    """``partitioned``: the step's runtime turns a direct dataset into data (a ParallelStep's
    inputs); anywhere else direct mode would hand the script the dataset's ID."""
    if isinstance(item, InputRef):
        if item.output.name in b.training_outputs:
            return b.outputs[item.output.name].as_input(item.name)  # PipelineData's signature
        return b.output(item.output).as_input(name=item.name)
    from azureml.data import TabularDataset

    dataset = b.resolve.dataset(item.dataset, item.version)
    tabular = isinstance(dataset, TabularDataset)
    if not partitioned:
        _refuse_id_binding(b, step, item, tabular=tabular)
    if item.version == "latest":
        # What DatasetConsumptionConfig(name, (workspace, name)) sets after fetching the
        # dataset itself: the published graph then names the dataset without a version, so
        # every run reads the latest registered version, as locally (_aeva_provider.py,
        # _dataset_def_val_from_dataset). A fetched dataset alone would be pinned.
        dataset._consume_latest = True
    named = dataset.as_named_input(item.input_name)
    if tabular or item.mode == "direct":
        return named  # tabular datasets have only direct mode in v1
    return named.as_download() if item.mode == "download" else named.as_mount()


def _refuse_id_binding(b: _Bindings, step: Step, item: DatasetInput, *, tabular: bool) -> None:
    """A dataset in direct mode (the only mode of a tabular one) reaches a script as its ID."""
    if tabular or item.mode == "direct":
        raise id_binding(f"pipeline {b.pipeline!r}", step, item, tabular=tabular)


def _parallel_step(step: ParallelStep, b: _Bindings, pipeline: str, compute: str, env: Any) -> Any:
    from azureml.data.dataset_consumption_config import DatasetConsumptionConfig
    from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

    def value(v: Any) -> Any:
        return b.param(v) if isinstance(v, Param) else v

    def default(v: Any) -> Any:
        return v.default if isinstance(v, Param) else v

    consumed: dict[Any, Any] = {}

    def consume(item: Any) -> Any:
        if item not in consumed:
            if isinstance(item, DataPathParam):
                param = b.dataset_param(item, pipeline)
                mode = "direct" if item.kind == "tabular" else item.mode
                consumed[item] = DatasetConsumptionConfig(item.name, param, mode=mode)
            else:
                consumed[item] = _consume(item, b, step, partitioned=item in step.inputs)
        return consumed[item]

    def bind(item: Any) -> Any:
        if isinstance(item, Param):
            return b.param(item)
        if isinstance(item, InputRef | DatasetInput | DataPathParam):
            return consume(item)
        if isinstance(item, Output):
            return b.output(item)
        return item if isinstance(item, str) else str(item)

    # The spec's settings are ParallelRunConfig's arguments, by name. v1 type-checks
    # NUMBER_CHECKED as plain numbers; a Param's PipelineParameter is set after validation
    # and reaches the driver as a command-line argument.
    settings = step.settings()
    config = ParallelRunConfig(
        environment=env,
        source_directory=str(step.source_dir),
        compute_target=compute,
        environment_variables=dict(b.environment_variables),
        **{k: default(v) if k in NUMBER_CHECKED else value(v) for k, v in settings.items()},
    )
    for key in NUMBER_CHECKED:
        setattr(config, key, value(settings[key]))
    primary = [consume(i) for i in step.inputs]
    side = [consume(i) for i in step.all_inputs() if i not in step.inputs]
    arguments = [bind(a) for a in step.arguments]
    return ParallelRunStep(
        name=step.name,
        parallel_run_config=config,
        inputs=primary,
        output=b.output(step.output),  # type: ignore[arg-type]
        side_inputs=side or None,
        arguments=arguments or None,
        allow_reuse=step.allow_reuse,
    )


def _bind_script_arguments(step: Step, b: _Bindings, pipeline: str) -> tuple[list, list]:
    """(arguments, inputs) of a step that runs a script, bound as PythonScriptStep binds them."""
    consumed: dict[Any, Any] = {}

    def bind(item: Any) -> Any:
        if isinstance(item, Param):
            return b.param(item)
        if isinstance(item, DataPathParam):
            return b.datapath(item, pipeline)
        if isinstance(item, Output):
            return b.output(item)
        if isinstance(item, InputRef | DatasetInput):
            if item not in consumed:
                consumed[item] = _consume(item, b, step)
            return consumed[item]
        return item if isinstance(item, str) else str(item)

    arguments = [bind(a) for a in step.arguments]
    inputs = [bind(i) for i in step.all_inputs()]
    return arguments, inputs


def _expression(p: SearchParam) -> Any:
    from azureml.train.hyperdrive import parameter_expressions

    # v1's expression functions by the same names; choice takes its options spread out.
    return getattr(parameter_expressions, p.expression)(*p.values)


def _sampling(step: SweepStep) -> Any:
    from azureml.train.hyperdrive import (
        BayesianParameterSampling,
        GridParameterSampling,
        RandomParameterSampling,
    )

    samplings = {
        "random": RandomParameterSampling,
        "grid": GridParameterSampling,
        "bayesian": BayesianParameterSampling,
    }
    # HyperDrive appends each key and its sampled value to the script's arguments, so the key
    # is the flag the local runner passes too.
    space = {f"--{p.name}": _expression(p) for p in step.search_space}
    return samplings[step.sampling](space)


def _policy(policy: EarlyTermination | None) -> Any:
    if policy is None:
        return None
    from azureml.train.hyperdrive import (
        BanditPolicy,
        MedianStoppingPolicy,
        TruncationSelectionPolicy,
    )

    timing = {
        "evaluation_interval": policy.evaluation_interval,
        "delay_evaluation": policy.delay_evaluation,
    }
    policies = {
        "bandit": lambda: BanditPolicy(
            slack_factor=policy.slack_factor, slack_amount=policy.slack_amount, **timing
        ),
        "median_stopping": lambda: MedianStoppingPolicy(**timing),
        "truncation_selection": lambda: TruncationSelectionPolicy(
            truncation_percentage=policy.truncation_percentage, **timing
        ),
    }
    return policies[policy.policy]()


def _sweep_step(step: SweepStep, b: _Bindings, pipeline: str, compute: str, env: Any) -> Any:
    from azureml.core import ScriptRunConfig
    from azureml.core.runconfig import RunConfiguration
    from azureml.pipeline.steps import HyperDriveStep
    from azureml.train.hyperdrive import HyperDriveConfig, PrimaryMetricGoal

    arguments, inputs = _bind_script_arguments(step, b, pipeline)
    runconfig = RunConfiguration()
    runconfig.environment = env
    runconfig.target = compute
    runconfig.environment_variables.update(b.environment_variables)
    # The trial's arguments go to the step, not the ScriptRunConfig: the step binds pipeline
    # parameters and data there, and HyperDriveStep takes them from one place only.
    trial = ScriptRunConfig(
        source_directory=str(step.source_dir), script=step.script, run_config=runconfig
    )
    config = HyperDriveConfig(
        run_config=trial,
        hyperparameter_sampling=_sampling(step),
        policy=_policy(step.early_termination),
        primary_metric_name=step.primary_metric_name,
        primary_metric_goal=PrimaryMetricGoal.from_str(step.primary_metric_goal),
        max_total_runs=step.max_total_runs,
        max_concurrent_runs=step.max_concurrent_runs,
        max_duration_minutes=step.max_duration_minutes,
    )
    metrics = None
    if step.metrics_output is not None:
        metrics = b.training_output(step.metrics_output, "Metrics")
    return HyperDriveStep(
        name=step.name,
        hyperdrive_config=config,
        estimator_entry_script_arguments=arguments,
        inputs=inputs,
        outputs=[b.output(o) for o in step.trial_outputs()],
        metrics_output=metrics,
        allow_reuse=step.allow_reuse,
    )


def _automl_training_data(step: AutoMLStep, b: _Bindings) -> Any:
    """AutoMLConfig reads a tabular dataset: a step's output read as delimited files (the
    ``training_file`` in it), or a registered tabular dataset."""
    item = step.training_data
    if isinstance(item, InputRef):
        if item.output.name in b.training_outputs:
            raise ConfigError(
                f"pipeline {b.pipeline!r}: AutoMLStep {step.name!r} trains on "
                f"{item.output.name!r}, a training output; v1 reads only a step's output folder "
                "or a registered tabular dataset as training_data"
            )
        # No type inference: it reads the data, which compile must not (columns are then text,
        # which AutoML's featurization types itself).
        return b.output(item.output).read_delimited_files(path_glob=step.training_file)
    from azureml.data import TabularDataset

    dataset = b.resolve.dataset(item.dataset, item.version)  # type: ignore[union-attr]
    if not isinstance(dataset, TabularDataset):
        raise ConfigError(
            f"pipeline {b.pipeline!r}: AutoMLStep {step.name!r} trains on dataset "
            f"{item.dataset!r}, a file dataset; AutoML on v1 takes a tabular dataset "
            "(register it with kind: tabular) or a step's output"
        )
    if item.version == "latest":
        dataset._consume_latest = True  # as _consume does: the graph names no version
    return dataset


def _automl_step(step: AutoMLStep, b: _Bindings, pipeline: str, compute: str, env: Any) -> Any:
    from azureml.pipeline.steps import AutoMLStep as AmlAutoMLStep
    from azureml.train.automl import AutoMLConfig

    optional = {
        "iteration_timeout_minutes": step.iteration_timeout_minutes,
        "n_cross_validations": step.n_cross_validations,
        "validation_size": step.validation_size,
        "allowed_models": list(step.allowed_models) or None,
        "blocked_models": list(step.blocked_models) or None,
    }
    config = AutoMLConfig(
        task=step.task,
        primary_metric=step.primary_metric,
        training_data=_automl_training_data(step, b),
        label_column_name=step.label_column_name,
        compute_target=b.resolve.compute(compute),
        path=str(step.source_dir),
        experiment_timeout_minutes=step.experiment_timeout_minutes,
        iterations=step.iterations,
        max_concurrent_iterations=step.max_concurrent_iterations,
        enable_early_stopping=step.enable_early_stopping,
        # AutoML runs in its curated environment (the step's environment is not used: the
        # AutoML runtime pins its own libraries). The SDK takes its own released build for a
        # pre-release one (its index file names an index page, not the index) and would then
        # look up the non-production environment instead.
        force_curated_environment=True,
        **{k: v for k, v in optional.items() if v is not None},
    )
    outputs = [
        b.training_output(step.metrics_output, "Metrics"),  # type: ignore[arg-type]
        b.training_output(step.model_output, "Model"),  # type: ignore[arg-type]
    ]
    return AmlAutoMLStep(
        name=step.name,
        automl_config=config,
        outputs=outputs,
        allow_reuse=step.allow_reuse,
        # Ours are the step's outputs; the SDK would add a second pair by default.
        enable_default_model_output=False,
        enable_default_metrics_output=False,
        # Training data from a step's output is read at run time, not embedded in the config.
        passthru_automl_config=False,
    )


# One compiler per spec step kind; a kind missing here is refused by name at build time.
V1_STEP_KINDS: dict[type, Any] = {
    ScriptStep: _script_step,
    ParallelStep: _parallel_step,
    SweepStep: _sweep_step,
    AutoMLStep: _automl_step,
}
