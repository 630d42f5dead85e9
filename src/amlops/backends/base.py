"""The interface every backend offers the deploy stages, and the plain records they return."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from amlops.errors import ConfigError

if TYPE_CHECKING:
    from amlops.config import Config, DatasetConfig, EnvironmentConfig, ScheduleConfig
    from amlops.spec import Pipeline, StepBase

CREATED, UPDATED, UNCHANGED, DISABLED = "created", "updated", "unchanged", "disabled"
# Every deploy stage, in the order they run; a backend offers a subset, in this order.
STAGES = ("register", "build", "run", "publish", "schedule")


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
    why: tuple[str, ...] = ()  # why it ran, or what it reused


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


def unsupported_step(backend: str, step: StepBase, pipeline: Pipeline | None = None) -> ConfigError:
    """The one-line refusal of a step kind a backend has no compiler or executor for."""
    where = f"pipeline {pipeline.name!r}, " if pipeline is not None else ""
    return ConfigError(f"the {backend} backend cannot run {step.kind} ({where}step {step.name!r})")


class StageNotOffered(ConfigError):
    """A stage the chosen backend does not have (Azure ML runs pipelines on its cluster)."""


@dataclass(frozen=True)
class StepDecision:
    """What a run now would do with one step, and why."""

    name: str
    reuses: str | None  # "<run_id>/<step>" of the run it would reuse; None: it would run
    why: tuple[str, ...] = ()


class Backend(Protocol):
    """What ``deploy`` and the CLI may ask of a backend, and nothing else.

    Every stage method takes ``plan``: decide what would change, apply nothing. A backend
    without a stage still has its method, which raises ``StageNotOffered``.
    """

    name: ClassVar[str]
    stages: ClassVar[tuple[str, ...]]  # the STAGES it offers, in order
    step_kinds: ClassVar[frozenset[type]]  # spec step classes it can compile or run

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        plan: bool,
        pipelines: Sequence[Pipeline],
        options: Mapping[str, Any],
    ) -> Backend:
        """Connect to the workspace ``config`` names; ``options`` are its BackendOptions."""
        ...

    def register_datasets(
        self, datasets: Sequence[DatasetConfig], *, plan: bool
    ) -> list[Change]: ...

    def register_environments(
        self, environments: Sequence[EnvironmentConfig], *, plan: bool
    ) -> list[Change]: ...

    def build(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]: ...

    def run(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
        tags: dict[str, str] | None = None,
    ) -> RunResult: ...

    def plan_run(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
    ) -> list[StepDecision]: ...

    def models(self) -> list[dict[str, Any]]:
        """Registered models, newest version first (what a run stage may have added)."""
        ...

    def publish(self, pipelines: Sequence[Pipeline], *, plan: bool) -> list[Change]: ...

    def schedule(
        self,
        schedules: Sequence[ScheduleConfig],
        *,
        plan: bool,
        pipelines: Sequence[Pipeline] = (),
        only: Collection[str] | None = None,
    ) -> list[Change]:
        """Reconcile ``schedules`` by name. ``only``: reconcile just the schedules of these
        pipelines (or named in ``schedules``) and leave every other schedule alone."""
        ...

    def close(self) -> None: ...


class NoRunStage:
    """The run stage of a backend whose pipelines run on the Azure ML cluster: there is none,
    and each of its methods says so (a mix-in for such backends)."""

    name: ClassVar[str]
    stages: ClassVar[tuple[str, ...]] = tuple(s for s in STAGES if s != "run")

    def run(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
        tags: dict[str, str] | None = None,
    ) -> RunResult:
        raise self._no_run_stage()

    def plan_run(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any] | None = None,
        *,
        regenerate_outputs: bool = False,
    ) -> list[StepDecision]:
        raise self._no_run_stage()

    def models(self) -> list[dict[str, Any]]:
        raise self._no_run_stage()

    def _no_run_stage(self) -> StageNotOffered:
        return StageNotOffered(
            f"--stage run: the {self.name} backend has no run stage; pipelines run on the "
            "Azure ML cluster, started by their schedules or their endpoints"
        )


def check_step_kinds(backend: type[Backend], pipelines: Sequence[Pipeline]) -> None:
    """Refuse, before anything runs, a step kind the backend has no compiler or executor for."""
    for pipeline in pipelines:
        for step in pipeline.steps:
            if type(step) not in backend.step_kinds:
                raise unsupported_step(backend.name, step, pipeline)
