"""How the local runner executes each step kind: its command line and what its reuse key adds.

One entry per spec step class. A kind missing here is refused by name before any step
runs ("the local backend cannot run MysteryStep"), never run as some other kind.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.backends.base import unsupported_step
from amlops.spec import (
    AutoMLStep,
    DataPathParam,
    DatasetInput,
    InputRef,
    Output,
    ParallelStep,
    Param,
    ScriptStep,
    Step,
    SweepStep,
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


def _sweep_command(step: SweepStep, bound: Bound) -> list[str]:
    """``python -m amlops.sweep``: the local HyperDrive, its whole configuration one JSON
    argument (kept in command.json with the rest); trial outputs stay unbound until a trial
    has a folder of its own."""
    arguments = [
        {"output": a.name} if isinstance(a, Output) else {"value": bound(a)} for a in step.arguments
    ]
    config = {
        "step": step.name,
        "script": step.script,
        "arguments": arguments,
        "outputs": {o.name: str(bound.outputs[o.name]) for o in step.trial_outputs()},
        "metrics_output": bound(step.metrics_output) if step.metrics_output else None,
        "space": [
            {"name": p.name, "expression": p.expression, "values": list(p.values)}
            for p in step.search_space
        ],
        "policy": _policy(step),
        "trials_dir": str(bound.log_dir / "trials"),
        "summary": str(bound.summary_file),
        **{k: v for k, v in step.settings().items() if k != "script"},
    }
    return ["-m", "amlops.sweep", "--config", json.dumps(config)]


def _policy(step: SweepStep) -> dict[str, Any] | None:
    et = step.early_termination
    return None if et is None else {k: getattr(et, k) for k in et.__dataclass_fields__}


def _sweep_key(step: SweepStep, token: Token) -> dict[str, Any]:
    """The search (space, sampling, limits, policy) with the trial script: a changed space is a
    new sweep; the script's content is in the source hash already."""
    return {
        "sweep": {
            **{k: token(v) for k, v in step.settings().items()},
            "space": [[p.name, p.expression, list(p.values)] for p in step.search_space],
            "policy": _policy(step),
            "metrics_output": step.metrics_output.name if step.metrics_output else None,
        }
    }


def _automl_command(step: AutoMLStep, bound: Bound) -> list[str]:
    """``python -m amlops.automl``: the local stand-in for Azure's AutoML (FLAML)."""
    assert step.training_data is not None and step.model_output
    config = {
        "training_data": str(bound.inputs[step.training_data].path),
        "metrics_output": bound(step.metrics_output) if step.metrics_output else None,
        "model_output": bound(step.model_output),
        "allowed_models": list(step.allowed_models),
        "blocked_models": list(step.blocked_models),
        "summary": str(bound.summary_file),
        **{k: bound.values[v.name] if isinstance(v, Param) else v
           for k, v in step.settings().items()},
    }  # fmt: skip
    return ["-m", "amlops.automl", "--config", json.dumps(config)]


def _automl_key(step: AutoMLStep, token: Token) -> dict[str, Any]:
    return {
        "automl": {
            **{k: token(v) for k, v in step.settings().items()},
            "allowed_models": list(step.allowed_models),
            "blocked_models": list(step.blocked_models),
        }
    }


LOCAL_STEP_KINDS: dict[type, LocalStepKind] = {
    SweepStep: LocalStepKind(_sweep_command, _sweep_key),
    AutoMLStep: LocalStepKind(_automl_command, _automl_key),
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
