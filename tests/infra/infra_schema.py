"""Check Terraform blocks against the azurerm schema cached from a CDK jsii assembly.

The schema (azurerm_schema.json) comes from tools/azurerm_schema/extract.py (the
cdktn-provider-azurerm package). For each resource, data source and provider block it
records the arguments (required or not) and nested blocks, and for resources and data
sources every attribute a reference may read. Exceptions live in schema_allowlist.toml,
each with a reason.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from infra_hcl import Block, is_block, items, top_blocks

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "azurerm_schema.json"
ALLOWLIST_PATH = HERE / "schema_allowlist.toml"

# Terraform's own meta-arguments, valid on every resource and data block.
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider"})
META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})
PROVIDER_META = frozenset({"alias"})
ALLOW_KINDS = frozenset(
    {"other_provider", "required", "attribute_as_block", "block_as_attribute", "extra"}
)


@dataclass(frozen=True)
class Allow:
    """One allowlist entry: `path` is <type>[.<block>...][.<name>] or provider.<name>[...]."""

    path: str
    kind: str
    reason: str


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The cached provider schema."""
    return json.loads(path.read_text(encoding="utf-8"))


def load_allowlist(path: Path = ALLOWLIST_PATH) -> list[Allow]:
    """Allowlist entries; a missing or trivial reason or an unknown kind is an error."""
    entries = []
    for raw in tomllib.loads(path.read_text(encoding="utf-8")).get("allow", []):
        entry = Allow(
            path=raw.get("path", ""), kind=raw.get("kind", ""), reason=raw.get("reason", "").strip()
        )
        if not entry.path or entry.kind not in ALLOW_KINDS or len(entry.reason) < 20:
            raise ValueError(
                f"{path.name}: entry {raw!r} needs a path, a kind in {sorted(ALLOW_KINDS)} "
                "and a reason"
            )
        entries.append(entry)
    return entries


def check(parsed: dict[str, dict], schema: dict, allowlist: list[Allow]) -> list[str]:
    """Every schema violation in the parsed module, one readable line each."""
    allowed = {(a.path, a.kind) for a in allowlist}
    errors: list[str] = []
    for kind, section in (("resource", "resources"), ("data", "data_sources")):
        for block in top_blocks(parsed, kind):
            type_name = block.labels[0]
            type_schema = schema[section].get(type_name)
            if type_schema is None:
                if (type_name, "other_provider") in allowed:
                    continue
                where = "azurerm " if type_name.startswith("azurerm_") else ""
                errors.append(
                    f"{block.file}: {block.address}: unknown {where}{kind} type {type_name!r}"
                )
                continue
            errors += _check_body(
                block, block.body, type_schema, type_name, (), allowed, META_ARGUMENTS, META_BLOCKS
            )
    for block in top_blocks(parsed, "provider"):
        name = block.labels[0]
        if name != "azurerm":
            if (f"provider.{name}", "other_provider") not in allowed:
                errors.append(
                    f"{block.file}: provider.{name}: provider not covered by the azurerm schema"
                )
            continue
        errors += _check_body(
            block,
            block.body,
            schema["provider"],
            "provider.azurerm",
            (),
            allowed,
            PROVIDER_META,
            frozenset(),
        )
    return errors


def _check_body(
    block: Block,
    body: dict,
    node: dict,
    root: str,
    trail: tuple[str, ...],
    allowed: set[tuple[str, str]],
    meta_args: frozenset[str],
    meta_blocks: frozenset[str],
) -> list[str]:
    errors = []
    attributes: dict[str, bool] = node["attributes"]
    blocks: dict[str, dict] = node["blocks"]
    present: set[str] = set()

    def where(name: str) -> str:
        return f"{block.file}: {block.address}: {'.'.join(trail + (name,))}"

    def path_of(name: str) -> str:
        return ".".join((root,) + trail + (name,))

    for name, value in items(body):
        # python-hcl2 marks the inner `label { ... }` as the block, not the list entry.
        if name == "dynamic" and isinstance(value, list):
            # dynamic "x" { content { ... } } stands for one or more x blocks.
            for dyn in value:
                for label, spec in items(dyn):
                    present.add(label)
                    content = spec.get("content", [{}])
                    if label not in blocks:
                        errors.append(f"{where(label)}: dynamic block for unknown block {label!r}")
                    elif is_block(content):
                        errors += _check_body(
                            block,
                            content[0],
                            blocks[label],
                            root,
                            trail + (label,),
                            allowed,
                            frozenset(),
                            frozenset(),
                        )
            continue
        present.add(name)
        if not trail and (name in meta_args or name in meta_blocks):
            continue
        if name in blocks:
            if is_block(value):
                for instance in value:
                    errors += _check_body(
                        block,
                        instance,
                        blocks[name],
                        root,
                        trail + (name,),
                        allowed,
                        frozenset(),
                        frozenset(),
                    )
            elif (path_of(name), "block_as_attribute") not in allowed:
                errors.append(
                    f"{where(name)}: {name!r} is a block, written here as an argument "
                    f"(use `{name} {{ ... }}`)"
                )
        elif name in attributes:
            if is_block(value) and (path_of(name), "attribute_as_block") not in allowed:
                errors.append(
                    f"{where(name)}: {name!r} is an argument, written here as a block "
                    f"(use `{name} = ...`)"
                )
        elif (path_of(name), "extra") not in allowed:
            known = ", ".join(sorted(attributes) + sorted(blocks))
            errors.append(f"{where(name)}: unknown argument or block {name!r} (known: {known})")

    for name, required in attributes.items():
        forced = (path_of(name), "required") in allowed
        if (required or forced) and name not in present:
            errors.append(f"{where(name)}: missing required argument {name!r}")
    for name, spec in blocks.items():
        forced = (path_of(name), "required") in allowed
        if (spec["required"] or forced) and name not in present:
            errors.append(f"{where(name)}: missing required block {name!r}")
    return errors


# `azurerm_x.name.attr`, `azurerm_x.name[0].attr`, `data.azurerm_x.name.attr`
_REFERENCE = re.compile(
    r"(?<![\w.])(?P<data>data\.)?(?P<type>azurerm_\w+)\.(?P<name>\w+)(?:\[[^\]]*\])?\.(?P<attr>\w+)"
)
# `for key, item in azurerm_x.name : ...item.attr...` (also the one-variable form)
_FOR = re.compile(
    r"\bfor\s+(?:\w+\s*,\s*)?(?P<var>\w+)\s+in\s+(?P<data>data\.)?(?P<type>azurerm_\w+)\.\w+\s*:"
)


def _code(text: str) -> str:
    """The text without whole-line comments (they may name attributes in prose)."""
    return "\n".join(
        "" if line.lstrip().startswith(("#", "//")) else line for line in text.splitlines()
    )


def check_references(texts: dict[str, str], schema: dict) -> list[str]:
    """Every attribute read from an azurerm resource or data source exists in the schema.

    The schema's `exported` list is every attribute the provider defines, computed ones
    included, so a reference to a removed one (azurerm 5 dropped `resource_manager_id`
    of azurerm_storage_container) is caught here; `terraform validate` would need the
    provider, which this machine cannot download.
    """
    errors = []
    for file, text in texts.items():
        code = _code(text)
        found: list[tuple[int, str, bool, str]] = []
        for m in _REFERENCE.finditer(code):
            found.append((m.start(), m["type"], bool(m["data"]), m["attr"]))
        for m in _FOR.finditer(code):
            # The loop variable's uses: up to the end of this expression's paragraph.
            end = code.find("\n\n", m.end())
            body = code[m.end() : end if end != -1 else len(code)]
            for use in re.finditer(rf"(?<![\w.]){m['var']}\.(\w+)", body):
                found.append((m.end() + use.start(), m["type"], bool(m["data"]), use[1]))
        for offset, type_name, is_data, attr in found:
            section = schema["data_sources" if is_data else "resources"]
            if type_name not in section:
                continue  # unknown types are reported by check()
            if attr not in section[type_name].get("exported", []):
                line = code.count("\n", 0, offset) + 1
                errors.append(
                    f"{file}:{line}: {'data.' if is_data else ''}{type_name} has no attribute "
                    f"{attr!r} in the provider schema"
                )
    return errors
