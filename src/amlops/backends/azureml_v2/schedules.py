"""Schedules on v2: a ``JobSchedule`` with a ``RecurrenceTrigger`` per configured name.

v2 schedule names are unique in a workspace, so reconciling by name is create, update in place
(``begin_create_or_update``) or disable (``begin_disable``); the shared policy decides which.
azure-ai-ml 1.35.2 has no data-change trigger (entities/_schedule/trigger.py: CronTrigger and
RecurrenceTrigger; the REST TriggerType enum has Recurrence and Cron only), so a
``datastore_trigger`` is refused before anything changes.

A v2 schedule runs a job, not an endpoint: it submits a pipeline job that runs the pipeline
component the endpoint's default deployment runs. Publishing a new version therefore changes
the schedule's target, and the next schedule stage updates it in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amlops.backends.azureml_v2.compile import SCHEMA, expr
from amlops.backends.base import CREATED, DISABLED, UPDATED, Change
from amlops.config import ScheduleConfig
from amlops.content import hash_text
from amlops.errors import ConfigError
from amlops.policy import RECURRENCE, ExistingSchedule, plan_schedules
from amlops.recurrence import default_start_time
from amlops.schedule_rules import action_change, check_parameters, target_of

FINGERPRINT_TAG = "amlops_fingerprint"
TARGET_TAG = "amlops_target"
JOB_FILE = "./job.yml"  # beside the schedule document when a deploy loads it


def check_schedules(schedules: Sequence[ScheduleConfig], where: str) -> None:
    """Refuse what v2 cannot express, naming the schedule and what to do instead."""
    for sc in schedules:
        if sc.datastore_trigger is not None:
            raise ConfigError(
                f"{where}: schedules.{sc.name}.datastore_trigger: azure-ai-ml has no data-change "
                "trigger; use a recurrence, or start the batch endpoint from an Event Grid "
                "blob-created event (remove the schedule or the trigger for this env)"
            )
        if sc.recurrence is not None:
            time_zone(sc, where)


def time_zone(sc: ScheduleConfig, where: str) -> str:
    """The Azure ML time zone name (the same Windows names v1 and the local backend take)."""
    from azure.ai.ml.constants import TimeZone

    value = sc.recurrence.time_zone if sc.recurrence else "UTC"
    for zone in TimeZone:
        if value in (zone.name, zone.value):
            return zone.value
    raise ConfigError(
        f"{where}: schedules.{sc.name}.recurrence.time_zone: {value!r} is not an Azure ML time "
        "zone (Windows names such as 'UTC' or 'W. Europe Standard Time')"
    )


def trigger_document(sc: ScheduleConfig, start_time: str) -> dict[str, Any]:
    rec = sc.recurrence
    assert rec is not None
    pattern: dict[str, Any] = {"hours": list(rec.hours), "minutes": list(rec.minutes)}
    if rec.week_days:
        pattern["week_days"] = [d.lower() for d in rec.week_days]
    return {
        "type": "recurrence",
        "frequency": rec.frequency.lower(),
        "interval": rec.interval,
        "schedule": pattern,
        # In the past: a start in the future or none at all makes the service run the job at
        # once; in the past, the first run is the next one the pattern gives.
        "start_time": rec.start_time or start_time,
        "time_zone": time_zone(sc, "config"),
    }


# A fixed past start for export, so the same config gives the same bytes; deploys use
# yesterday (recurrence.default_start_time), as the v1 backend does.
EXPORT_START = "2020-01-01T00:00:00"


def schedule_document(
    sc: ScheduleConfig,
    job: str,
    start_time: str = EXPORT_START,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JobSchedule document running the pipeline job file ``job`` (relative to it) with
    ``inputs`` (default: the schedule's parameters) over the file's own. The loader takes a
    job only by file or ARM id, never inline (_schema/schedule/create_job.py: ``job`` is
    required)."""
    create_job: dict[str, Any] = {"type": "pipeline", "job": job}
    inputs = sc.parameters if inputs is None else inputs
    if inputs:
        create_job["inputs"] = dict(inputs)
    doc: dict[str, Any] = {
        "$schema": f"{SCHEMA}/schedule.schema.json",
        "name": sc.name,
        "display_name": sc.name,
        "trigger": trigger_document(sc, start_time),
        "create_job": create_job,
    }
    if sc.description:
        doc["description"] = sc.description
    return doc


@dataclass(frozen=True)
class Target:
    """What a schedule runs: the pipeline component version the default deployment runs."""

    component: str | None  # "azureml:<name>:<version>"; None in a plan before publishing
    parameter_kinds: Mapping[str, str]  # name -> value | datapath | dataset
    # name -> the input on the pipeline's own path (compile.datapath_input): a data input of a
    # pipeline component has no default, so a fire must give every one.
    datapath_inputs: Mapping[str, dict[str, Any]]
    datastore: Callable[[str], str]  # a config datastore name -> the workspace's


def desired_fingerprint(sc: ScheduleConfig, target: Target) -> str:
    doc = {
        "pipeline": sc.pipeline,
        "component": target.component,
        "recurrence": sc.recurrence.__dict__ if sc.recurrence else None,
        "parameters": dict(sc.parameters),
        "description": sc.description,
    }
    return hash_text(json.dumps(doc, sort_keys=True, default=list))[:12]


def job_document(sc: ScheduleConfig, target: Target) -> dict[str, Any]:
    """The pipeline job a fire submits: one node running the published pipeline component."""
    inputs: dict[str, Any] = {name: dict(v) for name, v in target.datapath_inputs.items()}
    for name, value in sc.parameters.items():
        if target.parameter_kinds.get(name) == "datapath":
            store, _, path = str(value).partition("/")
            value = {
                **target.datapath_inputs[name],
                "path": f"azureml://datastores/{target.datastore(store)}/paths/{path.strip('/')}",
            }
        inputs[name] = value
    node_inputs = {name: expr(f"parent.inputs.{name}") for name in inputs}
    return {
        "type": "pipeline",
        "experiment_name": sc.pipeline,
        "inputs": inputs,
        "jobs": {
            "pipeline": {"type": "pipeline", "component": target.component, "inputs": node_inputs}
        },
    }


def reconcile(
    schedules: Sequence[ScheduleConfig],
    *,
    operations: Any,
    targets: Mapping[str, Target],
    where: str,
    plan: bool,
    load_schedule: Any,
    now: datetime | None = None,
    in_scope: Callable[[ExistingSchedule], bool] | None = None,
) -> list[Change]:
    """One enabled schedule per configured name; managed ones not in config are disabled (of
    those ``in_scope`` says this deploy may touch).

    ``operations`` is ``MLClient.schedules``; ``load_schedule(schedule, job)`` turns a schedule
    document whose job is ``JOB_FILE`` and that job's document into a ``JobSchedule`` through
    azure-ai-ml's loader.
    """
    # Not in azure.ai.ml.constants (1.35.2): the REST enum ScheduleOperations.list itself takes.
    from azure.ai.ml._restclient.arm_ml_service.models import ScheduleListViewType

    check_schedules(schedules, where)
    for sc in schedules:
        target = target_of(sc, targets)
        check_parameters(sc, target.parameter_kinds, where)
    existing = [
        ExistingSchedule(
            id=s.name,
            name=s.name,
            target=(s.tags or {}).get(TARGET_TAG),
            kind=RECURRENCE,
            active=bool(s.is_enabled),
            fingerprint=(s.tags or {}).get(FINGERPRINT_TAG),
            handle=s,
        )
        for s in operations.list(list_view_type=ScheduleListViewType.ALL)
    ]
    actions = plan_schedules(
        schedules,
        existing,
        # Same name, same pipeline: v2 updates a schedule's job in place, so a new component
        # version is an update, not a replacement.
        target=lambda sc: sc.pipeline,
        fingerprint=lambda sc: desired_fingerprint(sc, targets[sc.pipeline]),
        in_scope=in_scope,
    )
    # plan_schedules compares targets; v2's target is the pipeline name (kept in a tag).
    changes: list[Change] = []
    for act in actions:
        if act.action == DISABLED and not plan:
            operations.begin_disable(act.name).result()
        elif act.action in (CREATED, UPDATED) and not plan:
            sc = act.desired
            target = targets[sc.pipeline]
            start = default_start_time(now)
            if act.existing is not None and act.existing.handle.trigger is not None:
                # Keep the start it was created with: moving it could shift an interval's phase.
                start = str(act.existing.handle.trigger.start_time or start).replace(" ", "T")
            # The job file holds the inputs (data paths as typed inputs), nothing overrides them.
            doc = schedule_document(sc, JOB_FILE, start, inputs={})
            schedule = load_schedule(doc, job_document(sc, target))
            schedule.tags = {FINGERPRINT_TAG: act.fingerprint, TARGET_TAG: sc.pipeline}
            operations.begin_create_or_update(schedule).result()
        extra = {"fingerprint": act.fingerprint} if act.fingerprint else {}
        changes.append(action_change(act, act.name, **extra))
    return changes
