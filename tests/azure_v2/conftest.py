"""azure-ai-ml prints "experimental class" notices and deprecation warnings by the dozen while
loading its schemas; none is ours to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

SDK_WARNINGS = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::FutureWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(SDK_WARNINGS)
