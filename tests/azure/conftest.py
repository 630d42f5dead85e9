"""Fixtures for the offline Azure ML v1 tests; the fakes and why each exists: aml_offline.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aml_offline import CONDA, SUBSCRIPTION, DryRun, OfflineAssets, write_step

from amlops.backends.azureml_v1.offline import offline_workspace

# The SDK v1 stack warns about its own deprecated internals (ruamel, locale, `is` literals)
# by the hundred; none of it is ours to fix, and it drowns the summary `make test` prints.
SDK_WARNINGS = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::SyntaxWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(SDK_WARNINGS)


@pytest.fixture(scope="session")
def workspace() -> Any:
    return offline_workspace(SUBSCRIPTION, "rg-amlops-test", "mlw-amlops-test")


@pytest.fixture
def dry_run(workspace: Any) -> DryRun:
    return DryRun(workspace)


@pytest.fixture
def assets(workspace: Any) -> OfflineAssets:
    return OfflineAssets(workspace)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway repo root: conda file, step folders, and the package the wheel is built from."""
    root = tmp_path / "repo"
    write_step(root / "envs", {"test.yml": CONDA})
    write_step(root / "steps" / "prep", {"main.py": "print('prep')\n"})
    write_step(root / "steps" / "train", {"main.py": "print('train')\n"})
    write_step(
        root / "steps" / "score",
        {"score.py": "def init():\n    pass\n\n\ndef run(b):\n    return b\n"},
    )  # noqa: E501
    write_step(root / "src" / "amlops", {"__init__.py": "", "runtime.py": "X = 1\n"})
    (root / "pyproject.toml").write_text('[project]\nname = "amlops"\nversion = "0.1.0"\n')
    return root
