"""checkov finds no failed check in infra/, and every exception is an inline, reasoned skip.

checkov runs once per session (it takes seconds). It exits 0 on HCL it cannot parse, so
the parse errors in its report are checked as well as python-hcl2's own parse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from infra_hcl import INFRA_DIR, REPO_ROOT, require_tool

SKIP_COMMENT = re.compile(r"checkov:skip=")
VALID_SKIP = re.compile(r"^\s*#checkov:skip=(?P<id>CKV2?_AZURE_\d+):(?P<reason>.+)$")
RESOURCE_HEADER = re.compile(r'^resource "(?P<type>\w+)" "(?P<name>\w+)" \{')
MIN_REASON = 40  # characters: a sentence, not "n/a" or "not needed"


def run_checkov(directory: Path) -> dict:
    """checkov's JSON report for one directory, offline (no platform mapping, no downloads)."""
    checkov = require_tool("checkov")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    for key in ("BC_API_KEY", "PRISMA_API_URL"):
        env.pop(key, None)
    result = subprocess.run(
        [
            checkov,
            "-d",
            str(directory),
            "--framework",
            "terraform",
            "--compact",
            "-o",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=300,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON report (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    if isinstance(report, list):  # one entry per framework when more than one ran
        report = next(r for r in report if r.get("check_type") == "terraform")
    return report


@pytest.fixture(scope="session")
def checkov_report() -> dict:
    return run_checkov(INFRA_DIR)


def _describe(check: dict) -> str:
    where = f"{check['file_path']}:{check['file_line_range'][0]}"
    return f"{check['check_id']} {check['resource']} ({where}): {check['check_name']}"


def test_checkov_has_no_failed_checks(checkov_report):
    failed = checkov_report["results"].get("failed_checks", [])
    assert not failed, "checkov failed checks:\n" + "\n".join(_describe(c) for c in failed)


def test_checkov_parsed_every_file(checkov_report):
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, (
        f"checkov could not parse: {checkov_report['results'].get('parsing_errors')}"
    )
    assert summary["resource_count"] >= 30, (
        f"checkov saw only {summary['resource_count']} resources: {summary}"
    )
    assert summary["passed"] > 0


def test_checkov_skips_are_inline_with_reasons(checkov_report):
    skipped = checkov_report["results"].get("skipped_checks", [])
    assert skipped, "expected the documented public-mode skips to show up as skipped"
    for check in skipped:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= MIN_REASON, (
            f"skip without a real reason: {_describe(check)}: {reason!r}"
        )


def test_every_skip_comment_is_well_formed():
    """Skips only as `#checkov:skip=CKV_AZURE_n:reason` lines, never in checkov config files."""
    problems = []
    for path in sorted(INFRA_DIR.rglob("*")):
        if path.suffix not in (".tf", ".tfvars", ".hcl") or ".terraform" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not SKIP_COMMENT.search(line):
                continue
            match = VALID_SKIP.match(line)
            if not match:
                problems.append(
                    f"{path.name}:{number}: not `#checkov:skip=CKV_AZURE_n:reason` on its own line"
                )
            elif len(match["reason"].strip()) < MIN_REASON:
                problems.append(
                    f"{path.name}:{number}: {match['id']} reason too short: {match['reason']!r}"
                )
    configs = [
        p
        for p in (
            REPO_ROOT / ".checkov.yaml",
            REPO_ROOT / ".checkov.yml",
            INFRA_DIR / ".checkov.yaml",
            INFRA_DIR / ".checkov.yml",
        )
        if p.exists()
    ]
    assert not configs, (
        f"checkov config files can skip checks out of sight; use inline skips instead: {configs}"
    )
    assert not problems, "\n".join(problems)


def test_every_inline_skip_matches_a_check_checkov_ran(checkov_report):
    """A skip for a check that does not apply (wrong id, wrong resource) only misleads."""
    skipped = {
        (c["check_id"], c["resource"].split("[")[0])
        for c in checkov_report["results"]["skipped_checks"]
    }
    stale = []
    for path in sorted(INFRA_DIR.glob("*.tf")):
        address = None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if header := RESOURCE_HEADER.match(line):
                address = f"{header['type']}.{header['name']}"
            elif (match := VALID_SKIP.match(line)) and (match["id"], address) not in skipped:
                stale.append(
                    f"{path.name}:{number}: {match['id']} on {address} was not skipped by checkov"
                )
    assert not stale, "\n".join(stale)


def test_checkov_run_fails_on_broken_hcl_and_insecure_resources(tmp_path):
    """Proves both assertions above can fail: checkov exits 0 on broken HCL, so only the
    report's parse errors catch it; an unskipped insecure resource must show as failed."""
    copy = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (copy / "broken.tf").write_text(
        'resource "azurerm_resource_group" "x" {\n  name =\n}\n', encoding="utf-8"
    )
    (copy / "insecure.tf").write_text(
        'resource "azurerm_container_registry" "bad" {\n'
        '  name                = "crbad"\n'
        '  location            = "westeurope"\n'
        '  resource_group_name = "rg"\n'
        '  sku                 = "Basic"\n'
        "  admin_enabled       = true\n"
        "}\n",
        encoding="utf-8",
    )
    report = run_checkov(copy)
    assert report["summary"]["parsing_errors"] == 1, report["summary"]
    assert any(p.endswith("broken.tf") for p in report["results"]["parsing_errors"])
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert "CKV_AZURE_137" in failed, (
        f"admin user on should fail CKV_AZURE_137; failed: {sorted(failed)}"
    )
