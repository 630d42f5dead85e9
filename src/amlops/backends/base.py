"""What every backend returns to the deploy stages: plain records, easy to print and dump."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CREATED, UPDATED, UNCHANGED, DISABLED = "created", "updated", "unchanged", "disabled"


@dataclass(frozen=True)
class Change:
    """One thing a stage looked at: what it is, and what the stage did (or would do) to it."""

    kind: str  # dataset | environment | pipeline | endpoint | schedule | model
    name: str
    action: str  # created | updated | unchanged | disabled
    version: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.action != UNCHANGED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str
    reused: bool
    reused_from: str | None = None
    exit_code: int | None = None
    duration_s: float | None = None
    log: str | None = None
    summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunResult:
    pipeline: str
    run_id: str
    status: str
    parameters: dict[str, Any]
    steps: tuple[StepResult, ...]
    error: str | None = None
    folder: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
