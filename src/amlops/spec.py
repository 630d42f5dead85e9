"""Backend-neutral pipeline spec: the Azure ML v1 vocabulary as plain dataclasses.

Each class maps 1:1 onto an azureml-pipeline-core / -steps object, so compiling to v1 is
mechanical and validation here reproduces v1's own rules before Azure ever sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# v1 step names are free text but become run display names and folder names here.
STEP_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
ASSET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
MINI_BATCH_SIZE_RE = re.compile(r"^\d+([kKmMgG][bB])?$")

# Arguments the ParallelRunStep driver owns; v1 rejects them in user arguments
# (azureml.pipeline.core._parallel_run_step_base._validate_arguments).
PARALLEL_RESERVED_ARGS = frozenset(
    {
        "mini_batch_size",
        "error_threshold",
        "allowed_failed_count",
        "allowed_failed_percent",
        "output",
        "output_action",
        "logging_level",
        "process_count_per_node",
        "run_invocation_timeout",
        "run_max_try",
        "append_row_file_name",
        "partition_keys",
    }
)
APPEND_ROW_FILE_NAME_BAD = re.compile(r'[~"#%&*:<>?\/\\{|}]+')
OUTPUT_ACTIONS = ("append_row", "summary_only")
DATA_MODES = ("mount", "download", "direct")


class SpecError(ValueError):
    """A pipeline definition that Azure ML v1 would reject."""


def _check_name(kind: str, name: object, pattern: re.Pattern[str] = NAME_RE) -> None:
    if not isinstance(name, str) or not pattern.match(name):
        raise SpecError(f"{kind} name {name!r} must match {pattern.pattern}")


@dataclass(frozen=True)
class Param:
    """A PipelineParameter: a named value with a default, overridable per run."""

    name: str
    default: int | float | bool | str

    def __post_init__(self) -> None:
        _check_name("Param", self.name)
        if not isinstance(self.default, int | float | bool | str):
            raise SpecError(
                f"Param {self.name!r}: default must be int, float, bool or str, "
                f"not {type(self.default).__name__}"
            )


@dataclass(frozen=True)
class DataPathParam:
    """A PipelineParameter holding a DataPath (datastore + path), bound as a folder."""

    name: str
    datastore: str
    path: str
    mode: str = "mount"
    kind: str = "file"  # how a ParallelStep partitions it: "file" or "tabular"

    def __post_init__(self) -> None:
        _check_name("DataPathParam", self.name)
        if self.kind not in ("file", "tabular"):
            raise SpecError(f"DataPathParam {self.name!r}: kind must be file or tabular")
        _check_name("DataPathParam datastore", self.datastore, ASSET_NAME_RE)
        if not self.path or self.path.startswith("/") or ".." in Path(self.path).parts:
            raise SpecError(
                f"DataPathParam {self.name!r}: path {self.path!r} must be relative to the "
                "datastore and stay inside it"
            )
        if self.mode not in ("mount", "download"):
            raise SpecError(f"DataPathParam {self.name!r}: mode must be mount or download")


@dataclass(frozen=True)
class Output:
    """An OutputFileDatasetConfig: a folder a step writes and later steps read."""

    name: str

    def __post_init__(self) -> None:
        _check_name("Output", self.name)

    def as_input(self, name: str | None = None) -> InputRef:
        return InputRef(self, name or self.name)


@dataclass(frozen=True)
class InputRef:
    """A consumed Output (v1: ``OutputFileDatasetConfig.as_input()``)."""

    output: Output
    name: str

    def __post_init__(self) -> None:
        _check_name("Input", self.name)


@dataclass(frozen=True)
class DatasetInput:
    """A registered dataset consumed by name (v1: ``Dataset.get_by_name(...).as_named_input``)."""

    dataset: str
    version: str | int = "latest"
    name: str | None = None
    mode: str = "mount"

    def __post_init__(self) -> None:
        _check_name("Dataset", self.dataset, ASSET_NAME_RE)
        _check_name("Dataset input", self.input_name)
        if self.version != "latest" and not (
            isinstance(self.version, int)
            and not isinstance(self.version, bool)
            and self.version > 0
        ):
            raise SpecError(
                f"DatasetInput {self.dataset!r}: version must be 'latest' or a positive int"
            )
        if self.mode not in DATA_MODES:
            raise SpecError(f"DatasetInput {self.dataset!r}: mode must be one of {DATA_MODES}")

    @property
    def input_name(self) -> str:
        return self.name or self.dataset.replace("-", "_").replace(".", "_")


Argument = str | int | float | Param | DataPathParam | Output | InputRef | DatasetInput
ARGUMENT_TYPES = (str, int, float, Param, DataPathParam, Output, InputRef, DatasetInput)
Input = InputRef | DatasetInput | DataPathParam
IntOrParam = int | Param


def setting(default: Any, cli_type: type) -> Any:
    """A step kind's own setting (a ParallelRunConfig field, say), and how a command line
    spells it: the runner passes settings to the step's process as ``--<name> <value>``."""
    return field(default=default, metadata={"setting": cli_type})


@dataclass(frozen=True)
class StepBase:
    """What every step kind has. A new kind subclasses it, declares its own fields with
    ``setting()``, and is added to ``STEP_KINDS``; each backend maps kinds to its compiler
    or executor and refuses, by name, a kind it has none for."""

    # How v1 hands this kind a DataPathParam: "datapath" (a DataPath bound to a folder) or
    # "dataset" (ParallelRunStep partitions only datasets, so a dataset over the path).
    datapath_binding: ClassVar[str] = "datapath"
    # Whether Azure ML's runtime for this kind turns its ``inputs`` into data (mini-batches),
    # so a tabular dataset there reaches code as rows, not as an ID (see amlops.binding).
    partitions_inputs: ClassVar[bool] = False

    name: str
    source_dir: Path
    arguments: tuple[Argument, ...] = ()
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    compute: str | None = None
    environment: str | None = None
    allow_reuse: bool = True

    def _validate_common(self, kind: str) -> None:
        _check_name(f"{kind} step", self.name, STEP_NAME_RE)
        object.__setattr__(self, "source_dir", Path(self.source_dir))
        object.__setattr__(self, "arguments", tuple(self.arguments))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        for arg in self.arguments:
            if not isinstance(arg, ARGUMENT_TYPES):
                raise SpecError(
                    f"step {self.name!r}: argument {arg!r} is not a str, number, Param, "
                    "DataPathParam, Output, input or DatasetInput"
                )
        for item in self.inputs:
            if not isinstance(item, InputRef | DatasetInput | DataPathParam):
                raise SpecError(f"step {self.name!r}: input {item!r} is not an input")
        for item in self.outputs:
            if not isinstance(item, Output):
                raise SpecError(f"step {self.name!r}: output {item!r} is not an Output")
        if not isinstance(self.allow_reuse, bool):
            raise SpecError(f"step {self.name!r}: allow_reuse must be a bool")

    def all_inputs(self) -> list[Input]:
        """Inputs named in arguments or inputs, each once, in order of appearance."""
        seen: list[Input] = []
        for item in (*self.arguments, *self.inputs):
            if isinstance(item, InputRef | DatasetInput | DataPathParam) and item not in seen:
                seen.append(item)
        return seen

    def all_outputs(self) -> list[Output]:
        seen: list[Output] = []
        for item in (*self.arguments, *self.outputs):
            if isinstance(item, Output) and item not in seen:
                seen.append(item)
        return seen

    def params(self) -> list[Param | DataPathParam]:
        found: list[Param | DataPathParam] = []
        for item in (*self.arguments, *self.inputs, *self.settings().values()):
            if isinstance(item, Param | DataPathParam) and item not in found:
                found.append(item)
        return found

    @classmethod
    def setting_types(cls) -> dict[str, type]:
        """Each setting of this kind with its command-line type, in declaration order."""
        return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}

    def settings(self) -> dict[str, Any]:
        """This step's kind-specific settings (values may be Params)."""
        return {name: getattr(self, name) for name in self.setting_types()}

    @property
    def kind(self) -> str:
        return type(self).__name__

    def requested_nodes(self) -> int | None:
        """The nodes a kind with a ``node_count`` setting asks for (a Param: its default)."""
        value = self.settings().get("node_count")
        if value is None:
            return None
        return int(value.default) if isinstance(value, Param) else int(value)


@dataclass(frozen=True)
class ScriptStep(StepBase):
    """A PythonScriptStep: run ``script`` from ``source_dir`` with bound arguments."""

    script: str = setting("main.py", str)

    def __post_init__(self) -> None:
        self._validate_common("ScriptStep")
        _check_relative_script(self.name, "script", self.script)


@dataclass(frozen=True)
class ParallelStep(StepBase):
    """A ParallelRunStep with its ParallelRunConfig folded in.

    The ``setting()`` fields are ParallelRunConfig's, by the same names: the one list of them
    that the runner, the v1 compiler and the local driver's command line all read.
    """

    datapath_binding: ClassVar[str] = "dataset"
    partitions_inputs: ClassVar[bool] = True

    output: Output | None = None
    side_inputs: tuple[Input, ...] = ()
    entry_script: str = setting("score.py", str)
    mini_batch_size: str | Param | None = setting(None, str)
    error_threshold: IntOrParam = setting(10, int)
    allowed_failed_count: IntOrParam | None = setting(None, int)
    allowed_failed_percent: float | Param | None = setting(None, float)
    output_action: str = setting("append_row", str)
    append_row_file_name: str | None = setting(None, str)
    process_count_per_node: IntOrParam | None = setting(None, int)
    node_count: IntOrParam = setting(1, int)
    run_invocation_timeout: IntOrParam = setting(60, int)
    run_max_try: IntOrParam = setting(3, int)

    def __post_init__(self) -> None:
        self._validate_common("ParallelStep")
        object.__setattr__(self, "side_inputs", tuple(self.side_inputs))
        for item in self.side_inputs:
            if not isinstance(item, InputRef | DatasetInput | DataPathParam):
                raise SpecError(f"step {self.name!r}: side input {item!r} is not an input")
        _check_relative_script(self.name, "entry_script", self.entry_script)
        if self.output is None or not isinstance(self.output, Output):
            raise SpecError(f"ParallelStep {self.name!r}: output must be an Output")
        if self.outputs:
            raise SpecError(
                f"ParallelStep {self.name!r}: has exactly one output, given as output=, "
                "not outputs="
            )
        if not self.inputs:
            raise SpecError(f"ParallelStep {self.name!r}: needs at least one input")
        if self.arguments and not str(self.arguments[0]).startswith("-"):
            raise SpecError(
                f"ParallelStep {self.name!r}: arguments must be keyword arguments starting "
                f"with '-' (they are merged with the driver's), got {self.arguments[0]!r} first"
            )
        for arg in self.arguments:
            if isinstance(arg, str) and arg.startswith("--"):
                flag = arg[2:].split("=", 1)[0]
                if flag in PARALLEL_RESERVED_ARGS:
                    raise SpecError(
                        f"ParallelStep {self.name!r}: argument '--{flag}' is reserved by "
                        "ParallelRunStep; set the ParallelRunConfig field instead"
                    )
        if isinstance(self.mini_batch_size, str) and not MINI_BATCH_SIZE_RE.match(
            self.mini_batch_size
        ):
            raise SpecError(
                f"ParallelStep {self.name!r}: mini_batch_size {self.mini_batch_size!r} must "
                r"match ^\d+([kKmMgG][bB])?$"
            )
        _check_int(self.name, "error_threshold", self.error_threshold, minimum=-1)
        _check_int(self.name, "allowed_failed_count", self.allowed_failed_count, minimum=-1)
        pct = self.allowed_failed_percent
        if pct is not None and not isinstance(pct, Param):
            if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
                raise SpecError(
                    f"ParallelStep {self.name!r}: allowed_failed_percent must be between 0 and "
                    "100 (100 ignores failures)"
                )
        if self.output_action not in OUTPUT_ACTIONS:
            raise SpecError(
                f"ParallelStep {self.name!r}: output_action must be one of {OUTPUT_ACTIONS}"
            )
        if self.append_row_file_name is not None and (
            self.output_action != "append_row"
            or APPEND_ROW_FILE_NAME_BAD.search(self.append_row_file_name)
        ):
            raise SpecError(
                f"ParallelStep {self.name!r}: append_row_file_name must be a plain file name "
                "and needs output_action='append_row'"
            )
        _check_int(self.name, "process_count_per_node", self.process_count_per_node, minimum=1)
        _check_int(self.name, "node_count", self.node_count, minimum=1)
        _check_int(self.name, "run_invocation_timeout", self.run_invocation_timeout, minimum=1)
        _check_int(self.name, "run_max_try", self.run_max_try, minimum=1)

    def all_outputs(self) -> list[Output]:
        return [self.output] if self.output is not None else []

    def all_inputs(self) -> list[Input]:
        found = super().all_inputs()
        return found + [i for i in self.side_inputs if i not in found]


# --- tuning: HyperDriveStep and AutoMLStep ------------------------------------------------

# v1's parameter expressions (azureml.train.hyperdrive.parameter_expressions) and how many
# numeric arguments each takes; choice takes one or more values of any plain type.
EXPRESSION_ARITY = {
    "uniform": 2,  # (min_value, max_value)
    "quniform": 3,  # (min_value, max_value, q)
    "loguniform": 2,  # exp(uniform(min_value, max_value)): the bounds are exponents
    "qloguniform": 3,
    "normal": 2,  # (mu, sigma)
    "qnormal": 3,
    "randint": 1,  # (upper): integers in [0, upper)
}
EXPRESSIONS = ("choice", *EXPRESSION_ARITY)
# What each sampling accepts (sampling.py: GridParameterSampling / BayesianParameterSampling).
SAMPLING_EXPRESSIONS = {
    "random": frozenset(EXPRESSIONS),
    "grid": frozenset({"choice"}),
    "bayesian": frozenset({"choice", "uniform", "quniform"}),
}
BAYESIAN_QUNIFORM_POINTS = 100000
GOALS = ("maximize", "minimize")
POLICIES = ("bandit", "median_stopping", "truncation_selection")
# Service limits: MAX_DURATION_MINUTES in azureml/train/hyperdrive/runconfig.py; 1000 trials
# is the documented ceiling of max_total_runs (and RESUME_FROM_TOTAL_RUNS there).
MAX_TOTAL_RUNS = 1000
MAX_DURATION_MINUTES = 10080
METRIC_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,254}$")


@dataclass(frozen=True)
class SearchParam:
    """One hyperparameter of a sweep: the trial script's ``--<name>`` argument and its v1
    parameter expression, ``choice(*values)``, ``uniform(min, max)``, ``randint(upper)``..."""

    name: str
    expression: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        _check_name("Sweep parameter", self.name)
        object.__setattr__(self, "values", tuple(self.values))
        where = f"search parameter {self.name!r}"
        if self.expression not in EXPRESSIONS:
            raise SpecError(f"{where}: expression must be one of {', '.join(EXPRESSIONS)}")
        if self.expression == "choice":
            if not self.values or not all(
                isinstance(v, str | int | float | bool) for v in self.values
            ):
                raise SpecError(f"{where}: choice needs one or more numbers, strings or booleans")
            return
        arity = EXPRESSION_ARITY[self.expression]
        if len(self.values) != arity or not all(_is_number(v) for v in self.values):
            raise SpecError(f"{where}: {self.expression} takes {arity} numbers")
        if self.expression == "randint":
            if not isinstance(self.values[0], int) or self.values[0] <= 0:
                raise SpecError(f"{where}: randint(upper) needs a positive int")
        elif self.expression in ("uniform", "quniform", "loguniform", "qloguniform"):
            if self.values[0] >= self.values[1]:
                raise SpecError(f"{where}: {self.expression} needs min_value < max_value")
        elif self.values[1] <= 0:
            raise SpecError(f"{where}: {self.expression} needs sigma > 0")
        if arity == 3 and self.values[2] <= 0:
            raise SpecError(f"{where}: {self.expression} needs q > 0")


@dataclass(frozen=True)
class EarlyTermination:
    """A v1 early termination policy: BanditPolicy, MedianStoppingPolicy or
    TruncationSelectionPolicy, judged every ``evaluation_interval`` logged values of the
    primary metric once ``delay_evaluation`` have been logged."""

    policy: str
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    truncation_percentage: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise SpecError(f"early termination policy must be one of {', '.join(POLICIES)}")
        _check_int_key("early termination", "evaluation_interval", self.evaluation_interval, 1)
        _check_int_key("early termination", "delay_evaluation", self.delay_evaluation, 0)
        bandit = self.policy == "bandit"
        slacks = [v for v in (self.slack_factor, self.slack_amount) if v is not None]
        if bandit and len(slacks) != 1:
            raise SpecError("bandit policy needs exactly one of slack_factor or slack_amount")
        if not bandit and slacks:
            raise SpecError(f"{self.policy} policy takes no slack_factor or slack_amount")
        if any(not _is_number(v) or v <= 0 for v in slacks):
            raise SpecError("bandit policy: the slack must be a number > 0")
        truncation = self.policy == "truncation_selection"
        if truncation:
            pct = self.truncation_percentage
            if isinstance(pct, bool) or not isinstance(pct, int) or not 1 <= pct <= 99:
                raise SpecError("truncation_selection policy needs truncation_percentage 1..99")
        elif self.truncation_percentage is not None:
            raise SpecError(f"{self.policy} policy takes no truncation_percentage")


@dataclass(frozen=True)
class SweepStep(StepBase):
    """A HyperDriveStep: ``script`` run once per trial with ``--<name> <value>`` appended for
    each sampled hyperparameter; the best trial's ``outputs`` become the step's outputs and
    ``metrics_output`` holds every trial's logged metrics (v1's ``metrics_output``)."""

    search_space: tuple[SearchParam, ...] = ()
    early_termination: EarlyTermination | None = None
    metrics_output: Output | None = None
    script: str = setting("main.py", str)
    sampling: str = setting("random", str)
    primary_metric_name: str = setting("", str)
    primary_metric_goal: str = setting("maximize", str)
    max_total_runs: int = setting(20, int)
    max_concurrent_runs: int | None = setting(None, int)
    max_duration_minutes: int = setting(MAX_DURATION_MINUTES, int)
    # Locally seeds random and Bayesian sampling; v1 samples with the service's own seed.
    seed: int = setting(0, int)

    def __post_init__(self) -> None:
        self._validate_common("SweepStep")
        where = f"SweepStep {self.name!r}"
        object.__setattr__(self, "search_space", tuple(self.search_space))
        _check_relative_script(self.name, "script", self.script)
        if not self.search_space or not all(isinstance(p, SearchParam) for p in self.search_space):
            raise SpecError(f"{where}: search_space needs one or more SearchParams")
        names = [p.name for p in self.search_space]
        if len(set(names)) != len(names):
            raise SpecError(f"{where}: search_space names a parameter twice")
        flags = {str(a)[2:] for a in self.arguments if isinstance(a, str) and a.startswith("--")}
        clash = sorted(flags & set(names))
        if clash:
            raise SpecError(
                f"{where}: --{clash[0]} is both a fixed argument and a searched parameter"
            )
        if self.sampling not in SAMPLING_EXPRESSIONS:
            raise SpecError(f"{where}: sampling must be one of {', '.join(SAMPLING_EXPRESSIONS)}")
        allowed = SAMPLING_EXPRESSIONS[self.sampling]
        for p in self.search_space:
            if p.expression not in allowed:
                raise SpecError(
                    f"{where}: {self.sampling} sampling does not take {p.expression} "
                    f"(parameter {p.name!r}; it takes {', '.join(sorted(allowed))})"
                )
            # BayesianParameterSampling._bayesian_quniform_validator: ints only, and at most
            # 100000 points between the bounds.
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in p.values)
            if self.sampling == "bayesian" and p.expression == "quniform" and not ints:
                raise SpecError(
                    f"{where}: bayesian sampling takes quniform with int bounds and q only "
                    f"(parameter {p.name!r})"
                )
            if self.sampling == "bayesian" and p.expression == "quniform":
                low, high, q = p.values
                if (high - low) / q > BAYESIAN_QUNIFORM_POINTS:
                    raise SpecError(
                        f"{where}: quniform parameter {p.name!r} has more than "
                        f"{BAYESIAN_QUNIFORM_POINTS} points for bayesian sampling; use a larger q"
                    )
        if self.sampling == "bayesian" and self.early_termination is not None:
            raise SpecError(f"{where}: bayesian sampling does not support early termination")
        if self.early_termination is not None and not isinstance(
            self.early_termination, EarlyTermination
        ):
            raise SpecError(f"{where}: early_termination must be an EarlyTermination")
        if not isinstance(self.primary_metric_name, str) or not METRIC_NAME_RE.match(
            self.primary_metric_name
        ):
            raise SpecError(f"{where}: primary_metric_name must name a metric the trial logs")
        if self.primary_metric_goal not in GOALS:
            raise SpecError(f"{where}: primary_metric_goal must be maximize or minimize")
        _check_int_key(where, "max_total_runs", self.max_total_runs, 1, MAX_TOTAL_RUNS)
        if self.max_concurrent_runs is not None:
            _check_int_key(
                where, "max_concurrent_runs", self.max_concurrent_runs, 1, self.max_total_runs
            )
        _check_int_key(
            where, "max_duration_minutes", self.max_duration_minutes, 1, MAX_DURATION_MINUTES
        )
        _check_int_key(where, "seed", self.seed, 0)
        if self.metrics_output is not None and not isinstance(self.metrics_output, Output):
            raise SpecError(f"{where}: metrics_output must be an Output")
        if self.metrics_output is not None and self.metrics_output in self.outputs:
            raise SpecError(f"{where}: metrics_output is also one of the trial outputs")

    def all_outputs(self) -> list[Output]:
        found = super().all_outputs()
        if self.metrics_output is not None and self.metrics_output not in found:
            found.append(self.metrics_output)
        return found

    def trial_outputs(self) -> list[Output]:
        """The outputs each trial writes (the best trial's become the step's)."""
        return [o for o in super().all_outputs() if o != self.metrics_output]


AUTOML_TASKS = ("classification", "regression")
# Azure's primary metrics per task (azureml/automl/core/shared/constants.py: Metric.
# CLASSIFICATION_PRIMARY_SET, REGRESSION_PRIMARY_SET), the first the default here.
AUTOML_METRICS: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "AUC_weighted",
        "average_precision_score_weighted",
        "norm_macro_recall",
        "precision_score_weighted",
    ),
    "regression": (
        "normalized_root_mean_squared_error",
        "r2_score",
        "spearman_correlation",
        "normalized_mean_absolute_error",
    ),
}
# Azure's model names (azureml.train.automl.constants SupportedModels) that the local search
# has an equivalent for; the local stand-in maps each onto a FLAML estimator.
AUTOML_MODELS: dict[str, tuple[str, ...]] = {
    "classification": (
        "LogisticRegression",
        "RandomForest",
        "ExtremeRandomTrees",
        "GradientBoosting",
        "XGBoostClassifier",
        "KNN",
        "SGD",
    ),
    "regression": (
        "RandomForest",
        "ExtremeRandomTrees",
        "GradientBoosting",
        "XGBoostRegressor",
        "ElasticNet",
        "LassoLars",
        "SGD",
    ),
}
# automl_base_settings.py: MIN_EXPTIMEOUT_MINUTES, MAXIMUM_EXPERIMENT_TIMEOUT_MINUTES,
# MAXIMUM_ITERATION_TIMEOUT_MINUTES, MAX_N_CROSS_VALIDATIONS; constants.MAX_ITERATIONS.
AUTOML_TIMEOUT_MINUTES = (15, 525600)
AUTOML_ITERATION_TIMEOUT_MINUTES = (1, 43200)
AUTOML_MAX_ITERATIONS = 1000
AUTOML_MAX_CV = 1000
AUTOML_SOURCE = Path(__file__).parent / "automl"


@dataclass(frozen=True)
class AutoMLStep(StepBase):
    """An AutoMLStep with its AutoMLConfig folded in: ``training_data`` is a folder of CSV (on
    v1 read as a tabular dataset, ``training_file`` within it); ``metrics_output`` (optional)
    and ``model_output`` are v1's ``TrainingOutput(type="Metrics")`` and ``(type="Model")``."""

    # AutoML runs no user code: the folder is the local stand-in's own, so its fingerprint
    # changes when the stand-in does.
    source_dir: Path = AUTOML_SOURCE
    training_data: InputRef | DatasetInput | None = None
    metrics_output: Output | None = None
    model_output: Output | None = None
    allowed_models: tuple[str, ...] = ()
    blocked_models: tuple[str, ...] = ()
    task: str = setting("regression", str)
    primary_metric: str | None = setting(None, str)
    label_column_name: str = setting("", str)
    training_file: str = setting("train.csv", str)
    experiment_timeout_minutes: int = setting(15, int)
    iteration_timeout_minutes: int | None = setting(None, int)
    iterations: int = setting(100, int)
    max_concurrent_iterations: int = setting(1, int)
    n_cross_validations: int | None = setting(None, int)
    validation_size: float | None = setting(None, float)
    enable_early_stopping: bool = setting(True, bool)
    seed: int = setting(0, int)  # the local search's; Azure's is its own

    def __post_init__(self) -> None:
        self._validate_common("AutoMLStep")
        where = f"AutoMLStep {self.name!r}"
        object.__setattr__(self, "allowed_models", tuple(self.allowed_models))
        object.__setattr__(self, "blocked_models", tuple(self.blocked_models))
        if self.arguments:
            raise SpecError(f"{where}: takes no arguments (AutoML runs no script)")
        if self.outputs:
            raise SpecError(f"{where}: its outputs are metrics_output and model_output")
        if not isinstance(self.training_data, InputRef | DatasetInput):
            raise SpecError(f"{where}: training_data must be a step output or a dataset")
        if self.task not in AUTOML_TASKS:
            raise SpecError(f"{where}: task must be one of {', '.join(AUTOML_TASKS)}")
        metrics = AUTOML_METRICS[self.task]
        if self.primary_metric is None:
            object.__setattr__(self, "primary_metric", metrics[0])
        if self.primary_metric not in metrics:
            raise SpecError(
                f"{where}: primary_metric {self.primary_metric!r} is not an Azure ML "
                f"{self.task} metric ({', '.join(metrics)})"
            )
        if not self.label_column_name or not isinstance(self.label_column_name, str):
            raise SpecError(f"{where}: label_column_name is required")
        if APPEND_ROW_FILE_NAME_BAD.search(self.training_file) or not self.training_file:
            raise SpecError(f"{where}: training_file must be a plain file name")
        models = AUTOML_MODELS[self.task]
        for key in ("allowed_models", "blocked_models"):
            for model in getattr(self, key):
                if model not in models:
                    raise SpecError(
                        f"{where}: {key} names {model!r}, not a {self.task} model "
                        f"({', '.join(models)})"
                    )
        if set(self.allowed_models) & set(self.blocked_models):
            raise SpecError(f"{where}: a model is both allowed and blocked")
        if self.allowed_models and not set(self.allowed_models) - set(self.blocked_models):
            raise SpecError(f"{where}: allowed_models leaves no model to try")
        if set(models) <= set(self.blocked_models):
            raise SpecError(f"{where}: blocked_models leaves no model to try")
        low, high = AUTOML_TIMEOUT_MINUTES
        _check_int_key(
            where, "experiment_timeout_minutes", self.experiment_timeout_minutes, low, high
        )
        if self.iteration_timeout_minutes is not None:
            low, high = AUTOML_ITERATION_TIMEOUT_MINUTES
            _check_int_key(
                where, "iteration_timeout_minutes", self.iteration_timeout_minutes, low, high
            )
        _check_int_key(where, "iterations", self.iterations, 1, AUTOML_MAX_ITERATIONS)
        _check_int_key(where, "max_concurrent_iterations", self.max_concurrent_iterations, 1)
        if self.n_cross_validations is not None and self.validation_size is not None:
            raise SpecError(f"{where}: give n_cross_validations or validation_size, not both")
        if self.n_cross_validations is not None:
            _check_int_key(where, "n_cross_validations", self.n_cross_validations, 2, AUTOML_MAX_CV)
        vs = self.validation_size
        if vs is not None and (not _is_number(vs) or not 0.0 < vs < 1.0):
            raise SpecError(f"{where}: validation_size must be between 0 and 1")
        if not isinstance(self.enable_early_stopping, bool):
            raise SpecError(f"{where}: enable_early_stopping must be true or false")
        _check_int_key(where, "seed", self.seed, 0)
        if not isinstance(self.model_output, Output):
            raise SpecError(f"{where}: model_output must be an Output")
        if self.metrics_output is not None and not isinstance(self.metrics_output, Output):
            raise SpecError(f"{where}: metrics_output must be an Output (or left out)")
        if self.metrics_output == self.model_output:
            raise SpecError(f"{where}: metrics_output and model_output must differ")

    def all_inputs(self) -> list[Input]:
        found = super().all_inputs()
        if self.training_data is not None and self.training_data not in found:
            found.insert(0, self.training_data)
        return found

    def all_outputs(self) -> list[Output]:
        return [o for o in (self.metrics_output, self.model_output) if o is not None]


Step = StepBase
# Every step kind the spec knows, for specjson and the backends' tables.
STEP_KINDS: tuple[type[StepBase], ...] = (ScriptStep, ParallelStep, SweepStep, AutoMLStep)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int_key(
    where: str, key: str, value: object, minimum: int, maximum: int | None = None
) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum  # type: ignore[operator]
    if not ok:
        span = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise SpecError(f"{where}: {key} must be an int {span}, got {value!r}")


def _check_relative_script(step: str, key: str, script: str) -> None:
    if not script or Path(script).is_absolute() or ".." in Path(script).parts:
        raise SpecError(f"step {step!r}: {key} {script!r} must be a path inside source_dir")


def _check_int(step: str, key: str, value: object, minimum: int) -> None:
    if value is None or isinstance(value, Param):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"ParallelStep {step!r}: {key} must be an int >= {minimum}")


@dataclass(frozen=True)
class Pipeline:
    """A pipeline: steps whose data dependencies define the graph."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    parameters: tuple[Param | DataPathParam, ...] = field(init=False)

    def __post_init__(self) -> None:
        _check_name("Pipeline", self.name, ASSET_NAME_RE)
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise SpecError(f"pipeline {self.name!r} has no steps")
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"pipeline {self.name!r}: duplicate step names {dupes}")
        producers: dict[str, str] = {}
        for step in self.steps:
            for out in step.all_outputs():
                if out.name in producers:
                    raise SpecError(
                        f"pipeline {self.name!r}: output {out.name!r} is written by both "
                        f"{producers[out.name]!r} and {step.name!r}"
                    )
                producers[out.name] = step.name
        for step in self.steps:
            for item in step.all_inputs():
                if isinstance(item, InputRef) and item.output.name not in producers:
                    raise SpecError(
                        f"pipeline {self.name!r}: step {step.name!r} reads output "
                        f"{item.output.name!r} that no step writes"
                    )
        params: dict[str, Param | DataPathParam] = {}
        for step in self.steps:
            for p in step.params():
                other = params.setdefault(p.name, p)
                if other != p:
                    raise SpecError(
                        f"pipeline {self.name!r}: parameter {p.name!r} is defined twice "
                        "with different defaults"
                    )
        object.__setattr__(self, "parameters", tuple(params.values()))
        self.ordered_steps()  # raises on cycles

    def producer_of(self, output: Output) -> Step:
        return next(s for s in self.steps if output in s.all_outputs())

    def upstream(self, step: Step) -> list[Step]:
        return [self.producer_of(i.output) for i in step.all_inputs() if isinstance(i, InputRef)]

    def ordered_steps(self) -> list[Step]:
        """Steps in a topological order that keeps declaration order where it can."""
        done: list[Step] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if all(u in done for u in self.upstream(s))]
            if not ready:
                stuck = ", ".join(s.name for s in pending)
                raise SpecError(f"pipeline {self.name!r}: steps {stuck} form a cycle")
            done.append(ready[0])
            pending.remove(ready[0])
        return done

    def resolve_parameters(self, overrides: dict[str, object] | None) -> dict[str, object]:
        """Defaults merged with overrides; unknown names and wrong types are rejected."""
        values: dict[str, object] = {}
        for p in self.parameters:
            values[p.name] = p.default if isinstance(p, Param) else f"{p.datastore}/{p.path}"
        for key, value in (overrides or {}).items():
            spec = next((p for p in self.parameters if p.name == key), None)
            if spec is None:
                known = ", ".join(sorted(values)) or "none"
                raise SpecError(f"pipeline {self.name!r} has no parameter {key!r} (known: {known})")
            values[key] = _coerce(spec, value)
        # A step setting given as a Param (ParallelStep's mini_batch_size, say) is checked
        # with its value by the step's own validation, so a bad one fails before a run starts.
        for step in self.steps:
            for setting_name, value in step.settings().items():
                if isinstance(value, Param):
                    try:
                        replace(step, **{setting_name: values[value.name]})
                    except SpecError as exc:
                        raise SpecError(f"parameter {value.name!r}: {exc}") from None
        return values


def _coerce(spec: Param | DataPathParam, value: object) -> object:
    if isinstance(spec, DataPathParam):
        if not isinstance(value, str) or "/" not in value:
            raise SpecError(f"parameter {spec.name!r} takes 'datastore/path', got {value!r}")
        return value
    want = type(spec.default)
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif want is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
    elif want is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    elif isinstance(value, str):
        return value
    raise SpecError(f"parameter {spec.name!r} takes {want.__name__}, got {value!r}")
