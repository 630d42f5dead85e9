"""How the local runner executes each step kind: its command line and what its reuse key adds.

One entry per spec step class. A kind missing here is refused by name before any step
runs ("the local backend cannot run MysteryStep"), never run as some other kind.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.backends.base import unsupported_step
from amlops.spec import (
    DataPathParam,
    DatasetInput,
    InputRef,
    Output,
    ParallelStep,
    Param,
    ScriptStep,
    Step,
)


@dataclass(frozen=True)
class ResolvedInput:
    path: Path
    kind: str  # "file" | "tabular"
    identity: str  # what the fingerprint sees: content or producer, never the path
    label: str  # how a person names it: "dataset diabetes", "output prepared of step prep"
    note: str | None = None  # what tells two identities apart for a person: "v2", a path
    dataset_version: str | None = None


@dataclass(frozen=True)
class Bound:
    """A step's values as AML binds them on the compute: parameters by value, data by path."""

    values: dict[str, Any]
    inputs: dict[Any, ResolvedInput]
    outputs: dict[str, Path]
    log_dir: Path

    def __call__(self, value: Any) -> str:
        if isinstance(value, Param):
            return str(self.values[value.name])
        if isinstance(value, DataPathParam | InputRef | DatasetInput):
            return str(self.inputs[value].path)
        if isinstance(value, Output):
            return str(self.outputs[value.name])
        return str(value)

    @property
    def summary_file(self) -> Path:
        """Where a step that summarises its work (a ParallelStep) writes the summary."""
        return self.log_dir / "summary.json"


# A spec value as the reuse fingerprint sees it (parameter values, input identities).
Token = Callable[[Any], Any]


@dataclass(frozen=True)
class LocalStepKind:
    command: Callable[[Any, Bound], list[str]]  # the argv after the interpreter
    reuse_key: Callable[[Any, Token], dict[str, Any]]  # what the kind adds to the fingerprint


def _script_command(step: ScriptStep, bound: Bound) -> list[str]:
    return [step.script, *(bound(a) for a in step.arguments)]


def _parallel_command(step: ParallelStep, bound: Bound) -> list[str]:
    """``python -m amlops.parallel``: ParallelRunStep's driver, with its settings as flags."""
    driver: list[str] = []
    for key, value in step.settings().items():
        if value is not None:
            driver += [f"--{key}", bound(value)]
    assert step.output is not None  # the spec requires one
    driver += ["--output", bound(step.output), "--summary", str(bound.summary_file)]
    for item in step.inputs:
        name = item.input_name if isinstance(item, DatasetInput) else item.name
        resolved = bound.inputs[item]
        driver += ["--input", f"{name}={resolved.kind}:{resolved.path}"]
    return ["-m", "amlops.parallel", *driver, "--", *(bound(a) for a in step.arguments)]


LOCAL_STEP_KINDS: dict[type, LocalStepKind] = {
    ScriptStep: LocalStepKind(_script_command, lambda s, token: {"script": s.script}),
    ParallelStep: LocalStepKind(
        _parallel_command,
        lambda s, token: {"parallel": {k: token(v) for k, v in s.settings().items()}},
    ),
}


def local_kind(step: Step) -> LocalStepKind:
    found = LOCAL_STEP_KINDS.get(type(step))
    if found is None:
        raise unsupported_step("local", step)
    return found


def command(step: Step, bound: Bound) -> list[str]:
    return [sys.executable, *local_kind(step).command(step, bound)]
