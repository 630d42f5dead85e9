"""Azure ML pipelines as code. ``from amlops import Workspace`` is the notebook API.

Kept empty of imports: the CLI imports this package first and must start at once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Workspace", "Run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from amlops import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'amlops' has no attribute {name!r}")
