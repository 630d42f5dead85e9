"""Reconcile config schedules with the workspace by name: create, update in place, or disable.

v1 schedule names are not unique and schedules are never deleted, only disabled, so a naive
``Schedule.create`` per deploy piles up duplicates that all fire. Here each name maps to at most
one active schedule, and a fingerprint in its description says whether it matches config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amlops.backends.azureml_v1.preflight import WorkspaceFacts
from amlops.backends.base import CREATED, DISABLED, UNCHANGED, UPDATED, Change
from amlops.config import ScheduleConfig
from amlops.content import hash_text
from amlops.errors import AmlopsError, ConfigError
from amlops.recurrence import default_start_time
from amlops.schedule_rules import check_parameters, schedule_change

MARKER_RE = re.compile(r"\s*\[amlops:([0-9a-f]{12})\]\s*$")
RECURRENCE, DATASTORE = "Recurrence", "DataStore"


@dataclass(frozen=True)
class Target:
    """What a schedule runs: the endpoint of its pipeline, and how its parameters bind."""

    endpoint_id: str | None  # None in a plan before the endpoint exists
    parameter_kinds: Mapping[str, str]  # name -> value | datapath | dataset


def desired_fingerprint(sc: ScheduleConfig, target: Target) -> str:
    doc = {
        "pipeline": sc.pipeline,
        "endpoint": target.endpoint_id,
        "recurrence": sc.recurrence.__dict__ if sc.recurrence else None,
        "trigger": sc.datastore_trigger.__dict__ if sc.datastore_trigger else None,
        "parameters": dict(sc.parameters),
        "description": sc.description,
    }
    return hash_text(json.dumps(doc, sort_keys=True, default=list))[:12]


def validate(
    sc: ScheduleConfig, target: Target, facts: WorkspaceFacts | None, where: str, actual: str
) -> None:
    """Reject what v1 would refuse (or silently never fire) with the config key to fix."""
    check_parameters(sc, target.parameter_kinds, where)
    if sc.recurrence is not None:
        from azureml.pipeline.core import TimeZone

        _time_zone(sc, TimeZone)
    trig = sc.datastore_trigger
    if trig is None:
        return
    tk = f"{where}: schedules.{sc.name}.datastore_trigger"
    if facts is None or not sc.enabled:
        return  # a disabled trigger may name a datastore that is not provisioned yet
    ds = facts.datastores.get(actual)
    if ds is None:
        raise ConfigError(f"{tk}.datastore: {trig.datastore!r} was not checked by preflight")
    if ds.datastore_type != "AzureBlob":
        raise ConfigError(
            f"{tk}.datastore: v1 data-change schedules watch only AzureBlob datastores; "
            f"{actual!r} is {ds.datastore_type}"
        )
    if ds.credentials_type != "AccountKey":
        raise ConfigError(
            f"{tk}.datastore: v1 data-change schedules need a datastore registered with an "
            f"account key; {actual!r} uses {ds.credentials_type or 'identity-based access'}"
        )
    if facts.customer_managed_key or facts.private_link:
        raise ConfigError(
            f"{tk}: v1 data-change schedules do not work in workspaces with customer-managed "
            "keys or private endpoints; use a recurrence instead"
        )


def recurrence(sc: ScheduleConfig, start_time: str) -> Any:
    from azureml.pipeline.core import ScheduleRecurrence, TimeZone

    rec = sc.recurrence
    assert rec is not None
    zone = _time_zone(sc, TimeZone)
    return ScheduleRecurrence(
        frequency=rec.frequency,
        interval=rec.interval,
        start_time=rec.start_time or start_time,
        time_zone=zone,
        hours=list(rec.hours) or None,
        minutes=list(rec.minutes) or None,
        week_days=list(rec.week_days) or None,
    )


def _time_zone(sc: ScheduleConfig, zones: Any) -> Any:
    value = sc.recurrence.time_zone if sc.recurrence else "UTC"
    for zone in zones:
        if value in (zone.name, zone.value):
            return zone
    raise ConfigError(
        f"schedules.{sc.name}.recurrence.time_zone: {value!r} is not an Azure ML time zone "
        "(Windows names such as 'UTC' or 'W. Europe Standard Time')"
    )


def reconcile(
    schedules: Sequence[ScheduleConfig],
    *,
    workspace: Any,
    targets: Mapping[str, Target],
    datastore: Callable[[str], Any],
    actual_datastore: Callable[[str], str],
    facts: WorkspaceFacts | None,
    where: str,
    provider: Any = None,
    service_endpoint: str | None = None,
    plan: bool,
    now: datetime | None = None,
) -> list[Change]:
    """One active schedule per configured name; managed ones not in config are disabled."""
    from azureml.pipeline.core import Schedule

    existing = Schedule.list(
        workspace,
        active_only=False,
        _workflow_provider=provider,
        _service_endpoint=service_endpoint,
    )
    by_name: dict[str, list[Any]] = {}
    for s in existing:
        by_name.setdefault(s.name, []).append(s)
    changes: list[Change] = []
    for sc in schedules:
        target = targets.get(sc.pipeline)
        if target is None:
            raise AmlopsError(
                f"schedule {sc.name!r}: pipeline {sc.pipeline!r} has no endpoint yet; "
                "run the publish stage first"
            )
        actual = actual_datastore(sc.datastore_trigger.datastore) if sc.datastore_trigger else ""
        validate(sc, target, facts, where, actual)
        changes += _reconcile_one(
            sc,
            target,
            by_name.get(sc.name, []),
            workspace,
            datastore,
            actual,
            provider,
            service_endpoint,
            plan,
            now,
        )
    configured = {sc.name for sc in schedules}
    for s in existing:
        if s.name not in configured and s.status == "Active" and _marker(s) is not None:
            changes.append(_disable(s, plan, "removed from config"))
    return changes


def _reconcile_one(
    sc: ScheduleConfig,
    target: Target,
    same_name: list[Any],
    workspace: Any,
    datastore: Callable[[str], Any],
    actual: str,
    provider: Any,
    service_endpoint: str | None,
    plan: bool,
    now: datetime | None,
) -> list[Change]:
    from azureml.pipeline.core import Schedule

    kind = RECURRENCE if sc.recurrence else DATASTORE
    fp = desired_fingerprint(sc, target)
    # Only a schedule on the same endpoint and of the same type can be updated in place:
    # v1 cannot retarget a schedule or switch recurrence <-> data change.
    usable = [
        s
        for s in same_name
        if target.endpoint_id and s.pipeline_endpoint_id == target.endpoint_id and _kind(s) == kind
    ]
    usable.sort(key=lambda s: s.status != "Active")  # prefer an active one
    keep = usable[0] if usable else None
    changes = [
        _disable(s, plan, "duplicate name" if s in usable else "replaced")
        for s in same_name
        if s is not keep and s.status == "Active"
    ]
    description = f"{sc.description} [amlops:{fp}]".strip()
    params = (None if plan else _parameters(sc, target, datastore)) or None
    trig = sc.datastore_trigger
    if not sc.enabled:
        # Left as it is apart from its status: the definition is applied when re-enabled.
        if keep is not None and keep.status == "Active":
            changes.append(_disable(keep, plan, "enabled: false in config"))
        else:
            changes.append(Change("schedule", sc.name, UNCHANGED, detail={"status": "Disabled"}))
        return changes
    if keep is not None and keep.status == "Active" and _marker(keep) == fp:
        changes.append(schedule_change(UNCHANGED, sc, keep.id, fingerprint=fp))
        return changes
    if plan:
        action = CREATED if keep is None else UPDATED
        changes.append(schedule_change(action, sc, keep.id if keep else None, fingerprint=fp))
        return changes
    trigger_args: dict[str, Any] = {}
    if trig is not None:
        trigger_args = {
            "datastore": datastore(trig.datastore),
            "polling_interval": trig.polling_interval,
            "data_path_parameter_name": trig.data_path_parameter,
            "path_on_datastore": trig.path,
        }
    if keep is None:
        created = Schedule.create_for_pipeline_endpoint(
            workspace,
            name=sc.name,
            pipeline_endpoint_id=target.endpoint_id,
            experiment_name=sc.pipeline,
            recurrence=recurrence(sc, default_start_time(now)) if sc.recurrence else None,
            description=description,
            pipeline_parameters=params,
            _workflow_provider=provider,
            _service_endpoint=service_endpoint,
            **trigger_args,
        )
        changes.append(schedule_change(CREATED, sc, created.id, fingerprint=fp))
        return changes
    update_args: dict[str, Any] = dict(trigger_args)
    if sc.recurrence:
        # Keep the start the schedule was created with: moving it could fire a catch-up run.
        start = getattr(keep.recurrence, "start_time", None) or default_start_time(now)
        update_args["recurrence"] = recurrence(sc, start)
    keep.update(
        description=description,
        pipeline_parameters=params if params is not None else {},
        status="Active",
        **update_args,
    )
    changes.append(schedule_change(UPDATED, sc, keep.id, fingerprint=fp))
    return changes


def _parameters(
    sc: ScheduleConfig, target: Target, datastore: Callable[[str], Any]
) -> dict[str, Any]:
    """Config values as v1 wants them: 'datastore/path' strings become DataPath objects."""
    values: dict[str, Any] = {}
    for name, value in sc.parameters.items():
        if target.parameter_kinds.get(name) == "datapath":
            from azureml.data.datapath import DataPath

            store, _, path = str(value).partition("/")
            value = DataPath(datastore=datastore(store), path_on_datastore=path)
        values[name] = value
    return values


def _kind(s: Any) -> str:
    return RECURRENCE if s.recurrence is not None else DATASTORE


def _marker(s: Any) -> str | None:
    match = MARKER_RE.search(s.description or "")
    return match.group(1) if match else None


def _disable(s: Any, plan: bool, why: str) -> Change:
    if not plan:
        s.disable()
    return Change("schedule", s.name, DISABLED, detail={"schedule_id": s.id, "reason": why})
