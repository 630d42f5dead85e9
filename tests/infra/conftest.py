"""Fixtures for the offline Terraform checks of infra/ (fmt, schema, checkov, properties)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helper module sits next to this file; keep it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from infra_hcl import INFRA_DIR, HclParseError, parse_dir  # noqa: E402


@pytest.fixture(scope="session")
def infra() -> dict[str, dict]:
    """Every .tf file of infra/, parsed once per session; a parse error fails the test."""
    try:
        return parse_dir(INFRA_DIR)
    except HclParseError as exc:
        pytest.fail(f"infra/ does not parse: {exc}")
