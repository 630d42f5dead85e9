"""Helpers for the offline Terraform checks: parse infra/, walk its blocks, find the tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
META_KEYS = frozenset(
    {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}
)


class HclParseError(Exception):
    """A .tf file python-hcl2 cannot parse."""


def parse_text(text: str, name: str = "<string>") -> dict:
    """Parse HCL text into python-hcl2's dict form, string quotes stripped."""
    try:
        import hcl2
        from hcl2.utils import SerializationOptions
    except ImportError as exc:  # pragma: no cover - environment problem, not a test result
        pytest.fail(
            f"python-hcl2>=8.1 is needed for the infra tests ({exc}); "
            "install the dev extra (make test)."
        )
    try:
        return hcl2.loads(
            text, serialization_options=SerializationOptions(strip_string_quotes=True)
        )
    except Exception as exc:  # noqa: BLE001 - lark raises many types; all mean "does not parse"
        raise HclParseError(f"{name}: {type(exc).__name__}: {exc}") from exc


def parse_dir(directory: Path) -> dict[str, dict]:
    """Parse every .tf file of a root module, keyed by its path relative to the repo."""
    parsed = {}
    for path in sorted(directory.glob("*.tf")):
        parsed[_display(path)] = parse_text(path.read_text(encoding="utf-8"), _display(path))
    return parsed


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def is_block(value: object) -> bool:
    """True when a parsed value is one or more nested blocks (not an attribute)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def items(body: dict) -> Iterator[tuple[str, object]]:
    """Argument and block names of a body, without python-hcl2's metadata keys."""
    for key, value in body.items():
        if key not in META_KEYS:
            yield key, value


@dataclass(frozen=True)
class Block:
    """A labelled top-level block such as resource "type" "name"."""

    file: str
    kind: str  # resource, data, provider, variable, output, ...
    labels: tuple[str, ...]
    body: dict

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        if self.kind in ("resource", "data"):
            return prefix + ".".join(self.labels)
        return f"{self.kind}.{'.'.join(self.labels)}"


def top_blocks(parsed: dict[str, dict], kind: str) -> Iterator[Block]:
    """Every top-level block of one kind across the parsed files, in file order."""
    depth = 2 if kind in ("resource", "data") else 1
    for file, document in parsed.items():
        for entry in document.get(kind, []):
            yield from _unwrap(file, kind, entry, depth, ())


def _unwrap(
    file: str, kind: str, entry: dict, depth: int, labels: tuple[str, ...]
) -> Iterator[Block]:
    for label, inner in entry.items():
        if label in META_KEYS:
            continue
        if depth == 1:
            yield Block(file, kind, labels + (label,), inner)
        else:
            yield from _unwrap(file, kind, inner, depth - 1, labels + (label,))


def resources(parsed: dict[str, dict], resource_type: str | None = None) -> list[Block]:
    """Resource blocks, optionally of one type."""
    return [
        b
        for b in top_blocks(parsed, "resource")
        if resource_type is None or b.labels[0] == resource_type
    ]


def one_resource(parsed: dict[str, dict], resource_type: str, name: str) -> dict:
    """Body of the single resource type.name; fails the test if it is missing."""
    for block in resources(parsed, resource_type):
        if block.labels[1] == name:
            return block.body
    pytest.fail(f"infra/ has no resource {resource_type}.{name}")


def locals_map(parsed: dict[str, dict]) -> dict[str, object]:
    """All `locals` entries across the module."""
    merged: dict[str, object] = {}
    for document in parsed.values():
        for entry in document.get("locals", []):
            merged.update(dict(items(entry)))
    return merged


def sub_block(body: dict, name: str) -> dict:
    """The single nested block `name` of a body; fails the test if absent or repeated."""
    value = body.get(name)
    if not is_block(value) or len(value) != 1:
        pytest.fail(f"expected exactly one {name!r} block, found {value!r}")
    return value[0]


def tools_bin() -> Path:
    """Where `make tools` puts checkov and terraform (override with AMLOPS_TOOLS_BIN)."""
    return Path(os.environ.get("AMLOPS_TOOLS_BIN") or REPO_ROOT / ".venv-tools" / "bin")


def require_tool(name: str, *, path_fallback: bool = False) -> str:
    """Path of a tool in AMLOPS_TOOLS_BIN (or on PATH if allowed); fails, never skips."""
    candidate = tools_bin() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    if path_fallback and (found := shutil.which(name)):
        return found
    pytest.fail(
        f"{name} not found in {tools_bin()}{' or on PATH' if path_fallback else ''}: "
        "run `make tools` "
        "(or point AMLOPS_TOOLS_BIN at a bin directory that has it)."
    )


def terraform_env() -> dict[str, str]:
    """Environment for terraform: no version check-in calls, no prompts, no user CLI config."""
    return {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "TF_CLI_CONFIG_FILE": os.devnull,
    }
