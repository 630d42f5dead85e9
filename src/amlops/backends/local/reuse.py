"""What decides whether a step runs or is reused, and, when it runs, why.

The reuse key is v1's (step name, script, arguments, parameter values, the snapshot's files)
plus the environment's content and each input's identity. Each step run keeps its key, so the
next decision can say what changed since the last run of that step: a parameter, a code file,
a dataset version, the environment, an upstream step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from amlops.backends.local.step_kinds import ResolvedInput, local_kind
from amlops.content import hash_text
from amlops.spec import DataPathParam, DatasetInput, InputRef, Output, Param, Step

MAX_FILES_NAMED = 5


def reuse_key(
    step: Step,
    files: Mapping[str, str],
    values: Mapping[str, Any],
    env_hash: str,
    inputs: Mapping[Any, ResolvedInput],
) -> dict[str, Any]:
    """The document a step's fingerprint hashes; ``files`` maps each snapshot file to its hash."""

    def token(value: Any) -> Any:
        if isinstance(value, Param):
            return ["param", value.name, values[value.name]]
        if isinstance(value, DataPathParam | InputRef | DatasetInput):
            return ["input", inputs[value].label, inputs[value].identity]
        if isinstance(value, Output):
            return ["output", value.name]
        return value

    key: dict[str, Any] = {
        "type": step.kind,
        "name": step.name,
        "files": dict(files),
        "environment": env_hash,
        "arguments": [token(a) for a in step.arguments],
        "inputs": {inputs[i].label: inputs[i].identity for i in step.all_inputs()},
        "outputs": sorted(o.name for o in step.all_outputs()),
    }
    key.update(local_kind(step).reuse_key(step, token))
    return key


def fingerprint(key: Mapping[str, Any]) -> str:
    return hash_text(json.dumps(key, sort_keys=True, default=str))


def notes(inputs: Mapping[Any, ResolvedInput]) -> dict[str, str]:
    """What a person needs to read an input's change: a dataset's version, say."""
    return {r.label: r.note for r in inputs.values() if r.note}


def reasons(
    key: Mapping[str, Any],
    input_notes: Mapping[str, str],
    before: Mapping[str, Any] | None,
) -> list[str]:
    """Why a step with ``key`` cannot reuse the last run of it, ``before`` ({"key", "notes"})."""
    if before is None:
        return ["no earlier run of this step"]
    old, old_notes = before["key"], before.get("notes", {})
    found: list[str] = []
    found += _files(old.get("files", {}), key["files"])
    if old.get("environment") != key["environment"]:
        found.append("environment: its conda file changed")
    old_params, new_params = _params(old), _params(key)
    for name in sorted(set(old_params) | set(new_params)):
        if old_params.get(name) != new_params.get(name):
            was, now = old_params.get(name, "(none)"), new_params.get(name, "(none)")
            found.append(f"parameter {name}: {was} -> {now}")
    old_inputs, new_inputs = old.get("inputs", {}), key["inputs"]
    for label in sorted(set(old_inputs) | set(new_inputs)):
        if old_inputs.get(label) != new_inputs.get(label):
            found.append(_input_change(label, old_notes.get(label), input_notes.get(label)))
    rest = {k for k in set(old) | set(key) if k not in ("files", "environment", "inputs")}
    if any(_without_params(old.get(k)) != _without_params(key.get(k)) for k in rest):
        found.append("its definition changed (arguments or settings)")
    return found or ["the earlier run's outputs are gone"]


def _files(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    changed = sorted(
        [f"{rel} changed" for rel in set(old) & set(new) if old[rel] != new[rel]]
        + [f"{rel} added" for rel in set(new) - set(old)]
        + [f"{rel} removed" for rel in set(old) - set(new)]
    )
    if not changed:
        return []
    more = len(changed) - MAX_FILES_NAMED
    listed = ", ".join(changed[:MAX_FILES_NAMED]) + (f", and {more} more" if more > 0 else "")
    return [f"code: {listed}"]


def _params(key: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    _collect(key, lambda t: found.__setitem__(t[1], t[2]))
    return found


def _collect(value: Any, visit: Callable[[list], None]) -> None:
    if isinstance(value, list) and len(value) == 3 and value[0] == "param":
        visit(value)
    elif isinstance(value, list):
        for item in value:
            _collect(item, visit)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, visit)


def _without_params(value: Any) -> Any:
    """A key part with parameter values and input identities blanked: those changes are
    reported by name already."""
    if isinstance(value, list) and len(value) == 3 and value[0] in ("param", "input"):
        return value[:2]
    if isinstance(value, list):
        return [_without_params(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_params(v) for k, v in value.items()}
    return value


def _input_change(label: str, was: str | None, now: str | None) -> str:
    if was and now and was != now:
        return f"{label}: {was} -> {now}"
    return f"{label}: changed"
