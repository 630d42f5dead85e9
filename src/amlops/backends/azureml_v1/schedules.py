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
from amlops.backends.base import CREATED, DISABLED, UPDATED, Change
from amlops.config import ScheduleConfig
from amlops.content import hash_text
from amlops.errors import ConfigError
from amlops.policy import ACTIVE, DATASTORE, RECURRENCE, ExistingSchedule, plan_schedules
from amlops.recurrence import default_start_time
from amlops.schedule_rules import action_change, check_parameters, target_of

MARKER_RE = re.compile(r"\s*\[amlops:([0-9a-f]{12})\]\s*$")


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
    in_scope: Callable[[ExistingSchedule], bool] | None = None,
) -> list[Change]:
    """One active schedule per configured name; managed ones not in config are disabled
    (of those ``in_scope`` says this deploy may touch)."""
    from azureml.pipeline.core import Schedule

    listed = Schedule.list(
        workspace,
        active_only=False,
        _workflow_provider=provider,
        _service_endpoint=service_endpoint,
    )
    for sc in schedules:
        target = target_of(sc, targets)
        validate(sc, target, facts, where, _actual(sc, actual_datastore))
    existing = [
        ExistingSchedule(
            id=s.id,
            name=s.name,
            target=s.pipeline_endpoint_id,
            kind=RECURRENCE if s.recurrence is not None else DATASTORE,
            active=s.status == ACTIVE,
            fingerprint=_marker(s),
            handle=s,
        )
        for s in listed
    ]
    actions = plan_schedules(
        schedules,
        existing,
        target=lambda sc: targets[sc.pipeline].endpoint_id,
        fingerprint=lambda sc: desired_fingerprint(sc, targets[sc.pipeline]),
        cannot_update=cannot_update,
        in_scope=in_scope,
    )
    changes: list[Change] = []
    for act in actions:
        keep = act.existing
        schedule_id = keep.id if keep is not None else None
        if act.action == DISABLED and not plan:
            keep.handle.disable()
        elif act.action in (CREATED, UPDATED) and not plan:
            sc = act.desired
            schedule_id = _apply(
                sc,
                act.fingerprint,
                targets[sc.pipeline],
                keep and keep.handle,
                workspace=workspace,
                datastore=datastore,
                provider=provider,
                service_endpoint=service_endpoint,
                now=now,
            )
        extra = {"fingerprint": act.fingerprint} if act.fingerprint else {}
        changes.append(action_change(act, schedule_id, **extra))
    return changes


def cannot_update(existing: ExistingSchedule, sc: ScheduleConfig) -> str | None:
    """Why ``Schedule.update`` cannot turn ``existing`` into ``sc``; None when it can.

    ``update_schedule`` (azureml-pipeline-core 1.62, ``_aeva_provider.py``) keeps a trigger
    field's old value when given None, so a field config drops would stay set. The other
    fields ``_apply`` passes are always given a value and change in place: a description
    (never empty: it carries the marker), parameters (``{}`` clears them), a whole recurrence.
    """
    trig, s = sc.datastore_trigger, existing.handle
    if trig is None or s is None:
        return None
    kept = [
        field
        for field, old, new in (
            ("data_path_parameter", s.data_path_parameter_name, trig.data_path_parameter),
            ("path", s.path_on_datastore, trig.path),
        )
        if old and not new
    ]
    return f"the SDK cannot clear {' and '.join(kept)} in place" if kept else None


def _actual(sc: ScheduleConfig, actual_datastore: Callable[[str], str]) -> str:
    return actual_datastore(sc.datastore_trigger.datastore) if sc.datastore_trigger else ""


def _apply(
    sc: ScheduleConfig,
    fp: str,
    target: Target,
    keep: Any,
    *,
    workspace: Any,
    datastore: Callable[[str], Any],
    provider: Any,
    service_endpoint: str | None,
    now: datetime | None,
) -> str:
    """Create the schedule, or update ``keep`` in place; its id."""
    from azureml.pipeline.core import Schedule

    description = f"{sc.description} [amlops:{fp}]".strip()
    params = _parameters(sc, target, datastore) or None
    trig = sc.datastore_trigger
    trigger_args: dict[str, Any] = {}
    if trig is not None:
        trigger_args = {
            "datastore": datastore(trig.datastore),
            "polling_interval": trig.polling_interval,
            "data_path_parameter_name": trig.data_path_parameter,
            # None, not "": None is the SDK's documented "watch the container", what the
            # service does with "" is not known.
            "path_on_datastore": trig.path or None,
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
        return created.id
    update_args: dict[str, Any] = dict(trigger_args)
    if sc.recurrence:
        # Keep the start the schedule was created with: moving it could fire a catch-up run.
        start = getattr(keep.recurrence, "start_time", None) or default_start_time(now)
        update_args["recurrence"] = recurrence(sc, start)
    keep.update(
        description=description,
        pipeline_parameters=params if params is not None else {},
        status=ACTIVE,
        **update_args,
    )
    return keep.id


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


def _marker(s: Any) -> str | None:
    match = MARKER_RE.search(s.description or "")
    return match.group(1) if match else None
