"""What a schedule may set on its pipeline: the rules both backends enforce before any change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from amlops.backends.base import DISABLED, UNCHANGED, Change
from amlops.config import ScheduleConfig
from amlops.errors import AmlopsError, ConfigError
from amlops.policy import ScheduleAction
from amlops.recurrence import describe
from amlops.spec import Param, Pipeline

T = TypeVar("T")


def parameter_kinds(pipeline: Pipeline) -> dict[str, str]:
    """How each pipeline parameter is bound in v1: value, datapath or dataset."""
    kinds: dict[str, str] = {}
    for step in pipeline.steps:
        for p in step.params():
            if isinstance(p, Param):
                kinds[p.name] = "value"
            elif kinds.get(p.name) != "dataset":  # read as a dataset anywhere: a dataset
                kinds[p.name] = step.datapath_binding
    return kinds


def target_of(sc: ScheduleConfig, targets: Mapping[str, T]) -> T:
    """What ``sc`` will run: its pipeline's published endpoint, which must exist by now."""
    target = targets.get(sc.pipeline)
    if target is None:
        raise AmlopsError(
            f"schedule {sc.name!r}: pipeline {sc.pipeline!r} has no endpoint yet; "
            "run the publish stage first"
        )
    return target


def check_parameters(sc: ScheduleConfig, kinds: Mapping[str, str], where: str) -> None:
    """Reject schedule parameters and trigger bindings v1 would refuse, naming the config key."""
    key = f"{where}: schedules.{sc.name}"
    for pname, value in sc.parameters.items():
        kind = kinds.get(pname)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none"
            raise ConfigError(
                f"{key}.parameters.{pname}: pipeline {sc.pipeline!r} has no such parameter "
                f"(known: {known})"
            )
        if kind == "dataset":
            raise ConfigError(
                f"{key}.parameters.{pname}: read by a ParallelStep as a dataset parameter, "
                "which an Azure ML v1 schedule cannot set (refused on every backend, so a "
                "config that deploys on one deploys on all)"
            )
        if kind == "datapath" and (not isinstance(value, str) or "/" not in value):
            raise ConfigError(f"{key}.parameters.{pname}: takes 'datastore/path', got {value!r}")
    trig = sc.datastore_trigger
    if trig is None or trig.data_path_parameter is None:
        return
    tk = f"{key}.datastore_trigger.data_path_parameter"
    kind = kinds.get(trig.data_path_parameter)
    if kind in (None, "value"):
        raise ConfigError(
            f"{tk}: pipeline {sc.pipeline!r} has no DataPathParam {trig.data_path_parameter!r}"
        )
    if kind == "dataset":
        raise ConfigError(
            f"{tk}: {trig.data_path_parameter!r} is read by a ParallelStep, which v1 binds as "
            "a dataset parameter; data-change triggers can set only DataPath parameters (read "
            "by a ScriptStep). Drop data_path_parameter to rerun on the watched folder"
        )


def schedule_change(
    action: str, sc: ScheduleConfig, schedule_id: str | None, **extra: Any
) -> Change:
    """What a schedule stage reports for one configured schedule, on either backend."""
    detail: dict[str, Any] = {"schedule_id": schedule_id, "pipeline": sc.pipeline, **extra}
    if sc.recurrence:
        detail["recurrence"] = describe(sc.recurrence)
    else:
        assert sc.datastore_trigger is not None
        detail["watches"] = sc.datastore_trigger.blob_path()
    return Change("schedule", sc.name, action, detail=detail)


def action_change(act: ScheduleAction, schedule_id: str | None, **extra: Any) -> Change:
    """What a schedule stage reports for one reconcile action, on either backend."""
    if act.action == DISABLED:
        detail = {"schedule_id": schedule_id, "reason": act.reason}
        return Change("schedule", act.name, DISABLED, detail=detail)
    assert act.desired is not None
    if not act.desired.enabled:
        return Change("schedule", act.name, UNCHANGED, detail={"status": "Disabled"})
    return schedule_change(act.action, act.desired, schedule_id, **extra)
