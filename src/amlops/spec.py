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


Step = StepBase
# Every step kind the spec knows, for specjson and the backends' tables.
STEP_KINDS: tuple[type[StepBase], ...] = (ScriptStep, ParallelStep)


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
