"""Extract the azurerm provider schema from a CDK prebuilt provider's jsii assembly.

The Terraform registry is unreachable from CI, so `terraform providers schema` cannot
run. The prebuilt provider packages on the Python package index ship a jsii assembly
generated from the provider's own schema. HashiCorp's ``cdktf-cdktf-provider-azurerm``
stopped at 14.23.1 (azurerm 4.55.0) when CDK for Terraform was sunset; its community
fork CDK Terrain publishes ``cdktn-provider-azurerm``, whose 18.9.0 is generated from
azurerm 5.10.0, the newest azurerm schema any reachable registry ships (the npm package
``@cdktn/provider-azurerm`` lags behind at 16.1.0). This script reads either package's
assembly and writes a compact JSON of every resource, data source and the provider
block: for each, its arguments (required or optional) and nested blocks, recursively.
``tests/infra/test_infra_schema.py`` checks ``infra/`` against the cached file; CI never
installs the package.

Re-run (needs the package index, ~45 MB download, ~30 s):

    python3 tools/azurerm_schema/extract.py                      # downloads the wheel
    python3 tools/azurerm_schema/extract.py --wheel /tmp/x/cdktn_provider_azurerm-*.whl

Output: ``tests/infra/azurerm_schema.json`` (override with ``--output``). The file is
deterministic (sorted keys, one resource per line) so a re-run diffs cleanly.

Limits of the source, handled by the allowlist in ``tests/infra/schema_allowlist.toml``:
the assembly lists only what a user can set (computed-only attributes are absent),
and meta-arguments (count, for_each, depends_on, lifecycle, provider) come from the
cdktf base class, so the checker adds them itself.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "cdktn-provider-azurerm"
VERSION = "18.9.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "tests" / "infra" / "azurerm_schema.json"

# "{@link https://<registry>/providers/hashicorp/azurerm/4.55.0/docs/resources/foo azurerm_foo}"
_CLASS_LINK = re.compile(
    r"/providers/hashicorp/azurerm/(?P<version>[\d.]+)/docs/(?P<kind>resources|data-sources)/\S+\s+(?P<name>azurerm_\w+)\}"
)
# "... docs/resources/foo#bar_baz Foo#bar_baz}" -> bar_baz
_ANCHOR = re.compile(r"#(?P<name>[A-Za-z0-9_]+)\s+\w+#")
# Both generators: HashiCorp's cdktf and its fork cdktn (same layout, other scope names).
_CDK = ("cdktf", "cdktn")


def download_wheel(dest: Path) -> Path:
    """Download the pinned wheel with pip (no dependencies) and return its path."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            f"{PACKAGE}=={VERSION}",
            "-d",
            str(dest),
        ],
        check=True,
    )
    return next(dest.glob(f"{PACKAGE.replace('-', '_')}-*.whl"))


def read_assembly(wheel: Path) -> dict:
    """Return the parsed ``.jsii`` assembly from inside the wheel's bundled npm tarball."""
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        tgz = zf.read(member)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tf:
        fh = tf.extractfile("package/.jsii")
        assert fh is not None, "package/.jsii missing from the assembly tarball"
        return json.load(fh)


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _tf_name(prop: dict) -> str:
    docs = prop.get("docs", {})
    for text in (docs.get("summary", ""), docs.get("remarks", "")):
        m = _ANCHOR.search(text)
        if m:
            return m.group("name")
    return _snake(prop["name"])


def _block_target(type_ref: dict, local: str) -> tuple[str, bool] | None:
    """If a property's type is a nested block, return (interface fqn, is_single)."""
    fqn = type_ref.get("fqn")
    if fqn and fqn.startswith(local):
        return fqn, True
    for member in type_ref.get("union", {}).get("types", []):
        coll = member.get("collection")
        if coll and coll.get("kind") == "array":
            elem = coll["elementtype"].get("fqn", "")
            if elem.startswith(local):
                return elem, False
    return None


def describe(types: dict, fqn: str, seen: tuple[str, ...] = (), *, local: str = "") -> dict:
    """Schema of one config interface: {"attributes": {name: required}, "blocks": {...}}."""
    if fqn in seen:  # recursive types do not occur in azurerm, but never loop forever
        return {"attributes": {}, "blocks": {}, "recursive": True}
    local = local or fqn.split(".", 1)[0] + "."  # "@cdktn/provider-azurerm."
    iface = types[fqn]
    attributes: dict[str, bool] = {}
    blocks: dict[str, dict] = {}
    for prop in iface.get("properties", []):
        name = _tf_name(prop)
        required = not prop.get("optional", False)
        target = _block_target(prop["type"], local)
        if target is None:
            attributes[name] = required
        else:
            inner = describe(types, target[0], seen + (fqn,), local=local)
            blocks[name] = {"required": required, "single": target[1], **inner}
    return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}


def exported(class_def: dict) -> list[str]:
    """Every attribute a reference may read (``azurerm_x.y.<name>``), computed ones included.

    The config interface lists only what a user sets; the class has a getter for every
    attribute of the provider's schema, so a removed attribute (``resource_manager_id`` of
    ``azurerm_storage_container`` in azurerm 5) disappears from here too.
    """
    names = {
        _snake(prop["name"])
        for prop in class_def.get("properties", [])
        if not prop.get("static")
        and not prop["name"].endswith("Input")
        and prop["name"] != "tfResourceType"
    }
    return sorted(names)


def extract(assembly: dict) -> dict:
    """Build the compact schema document from a parsed jsii assembly."""
    types = assembly["types"]
    resources: dict[str, dict] = {}
    data_sources: dict[str, dict] = {}
    provider: dict | None = None
    provider_version = None
    for type_def in types.values():
        if type_def.get("kind") != "class" or "initializer" not in type_def:
            continue
        base = type_def.get("base", "")
        params = type_def["initializer"].get("parameters", [])
        config = next((p["type"].get("fqn") for p in params if p["name"] == "config"), None)
        if not config:
            continue
        cdk, _, kind = base.partition(".")
        if cdk not in _CDK:
            continue
        if kind == "TerraformProvider":
            provider = describe(types, config)
            continue
        if kind not in ("TerraformResource", "TerraformDataSource"):
            continue
        m = _CLASS_LINK.search(type_def.get("docs", {}).get("summary", ""))
        if not m:
            raise SystemExit(f"cannot find the Terraform type name of {type_def['fqn']}")
        provider_version = m.group("version")
        target = resources if m.group("kind") == "resources" else data_sources
        target[m.group("name")] = {**describe(types, config), "exported": exported(type_def)}
    if provider is None:
        raise SystemExit("no provider class found in the assembly")
    # The Python distribution's name (cdktn-provider-azurerm), which is what --wheel takes.
    package = assembly.get("targets", {}).get("python", {}).get("distName", assembly["name"])
    return {
        "source": f"{package}=={assembly['version']} (jsii assembly), azurerm {provider_version}",
        "provider": provider,
        "resources": dict(sorted(resources.items())),
        "data_sources": dict(sorted(data_sources.items())),
    }


def dump(schema: dict) -> str:
    """Serialise deterministically: one resource per line keeps diffs reviewable."""
    compact = {"separators": (",", ":"), "sort_keys": True}
    lines = [
        "{",
        f'"source":{json.dumps(schema["source"])},',
        f'"provider":{json.dumps(schema["provider"], **compact)},',
    ]
    for section in ("resources", "data_sources"):
        items = list(schema[section].items())
        lines.append(f'"{section}":{{')
        for i, (name, body) in enumerate(items):
            sep = "," if i < len(items) - 1 else ""
            lines.append(f"{json.dumps(name)}:{json.dumps(body, **compact)}{sep}")
        lines.append("}," if section == "resources" else "}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {PACKAGE} (or cdktf) wheel")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        schema = extract(read_assembly(wheel))
    text = dump(schema)
    json.loads(text)  # the hand-made layout must still be valid JSON
    args.output.write_text(text, encoding="utf-8")
    print(
        f"{args.output}: {len(schema['resources'])} resources, "
        f"{len(schema['data_sources'])} data sources, "
        f"{len(text) / 1e6:.2f} MB ({schema['source']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
