"""Schedule reconciliation against the dry-run pipeline service, across repeated deploys.

Faked edges (see aml_offline): auth token, service discovery, snapshot upload, and the
dataset/environment services. Schedules themselves are the SDK's, stored by DryRunServiceCaller.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aml_offline import (
    CONFIG,
    batch_pipeline,
    chain_pipeline,
    facts,
    ingest_pipeline,
    make_backend,
    write_config,
)

from amlops.backends.azureml_v1.preflight import DatastoreFacts
from amlops.backends.azureml_v1.schedules import default_start_time
from amlops.errors import AmlopsError, ConfigError

NIGHTLY = """
schedules:
  nightly:
    pipeline: chain
    description: retrain
    parameters: {learning_rate: 0.1}
    recurrence: {frequency: Day, interval: 1, hours: [2], minutes: [30], time_zone: UTC}
  weekly:
    pipeline: batch
    recurrence:
      frequency: Week
      interval: 1
      week_days: [Monday]
      hours: [6]
      minutes: [0]
      time_zone: W. Europe Standard Time
"""


def deploy(workspace, dry_run, assets, project, schedules_yaml, *, plan=False, **kw):
    """One `deploy.py --env test` against the same simulated workspace."""
    config = write_config(project, CONFIG + schedules_yaml)
    backend = make_backend(workspace, config, assets, dry_run, **kw)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    pipelines = [chain_pipeline(project), batch_pipeline(project), ingest_pipeline(project)]
    backend.publish(pipelines, plan=False)
    return backend.schedule(config.schedules, plan=plan, pipelines=pipelines)


def stored(dry_run, workspace=None):
    """Every schedule entity the service holds, as (name, status, type)."""
    from azureml.pipeline.core import Schedule

    ids = list(dry_run.caller._schedule_entities)
    ws = workspace or dry_run.provider.schedule_provider._workspace
    return [Schedule.get(ws, i, _workflow_provider=dry_run.provider) for i in ids]


def summary(changes):
    return sorted((c.name, c.action) for c in changes)


def test_create_then_rerun_changes_nothing(workspace, dry_run, assets, project):
    first = deploy(workspace, dry_run, assets, project, NIGHTLY)
    assert summary(first) == [("nightly", "created"), ("weekly", "created")]
    again = deploy(workspace, dry_run, assets, project, NIGHTLY)
    assert summary(again) == [("nightly", "unchanged"), ("weekly", "unchanged")]
    schedules = stored(dry_run)
    assert len(schedules) == 2  # never a duplicate
    nightly = next(s for s in schedules if s.name == "nightly")
    assert nightly.status == "Active"
    # Targets the endpoint, so it follows the endpoint's default version.
    endpoint = next(iter(dry_run.caller._pipeline_endpoint_entities.values()))
    assert nightly.pipeline_endpoint_id in {
        e.id for e in dry_run.caller._pipeline_endpoint_entities.values()
    }
    assert nightly.pipeline_id is None and endpoint is not None
    rec = nightly.recurrence
    assert (rec.frequency, rec.interval, rec.hours, rec.minutes) == ("Day", 1, [2], [30])
    # Created with a start time in the past: creation must not fire a run.
    assert rec.start_time is not None
    assert rec.start_time < datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    entity = dry_run.caller._schedule_entities[nightly.id]
    assert entity.pipeline_submission_info.parameter_assignments == {"learning_rate": "0.1"}
    weekly = next(s for s in schedules if s.name == "weekly")
    assert weekly.recurrence.week_days == ["Monday"]
    assert weekly.recurrence.time_zone.value == "W. Europe Standard Time"


def test_changed_schedule_is_updated_in_place(workspace, dry_run, assets, project):
    deploy(workspace, dry_run, assets, project, NIGHTLY)
    before = {s.name: s for s in stored(dry_run)}
    changed = NIGHTLY.replace("hours: [2]", "hours: [4]").replace("0.1}", "0.2}")
    assert summary(deploy(workspace, dry_run, assets, project, changed)) == [
        ("nightly", "updated"),
        ("weekly", "unchanged"),
    ]
    after = {s.name: s for s in stored(dry_run)}
    assert len(after) == 2 and after["nightly"].id == before["nightly"].id
    assert after["nightly"].recurrence.hours == [4]
    assert after["nightly"].recurrence.start_time == before["nightly"].recurrence.start_time
    entity = dry_run.caller._schedule_entities[after["nightly"].id]
    assert entity.pipeline_submission_info.parameter_assignments == {"learning_rate": "0.2"}
    assert summary(deploy(workspace, dry_run, assets, project, changed)) == [
        ("nightly", "unchanged"),
        ("weekly", "unchanged"),
    ]


def test_removed_or_disabled_schedules_are_disabled_not_duplicated(
    workspace, dry_run, assets, project
):
    deploy(workspace, dry_run, assets, project, NIGHTLY)
    only_nightly = NIGHTLY.split("  weekly:")[0]
    assert summary(deploy(workspace, dry_run, assets, project, only_nightly)) == [
        ("nightly", "unchanged"),
        ("weekly", "disabled"),
    ]
    paused = only_nightly.replace(
        "    pipeline: chain\n", "    pipeline: chain\n    enabled: false\n"
    )
    assert summary(deploy(workspace, dry_run, assets, project, paused)) == [("nightly", "disabled")]
    assert {s.name: s.status for s in stored(dry_run)} == {
        "nightly": "Disabled",
        "weekly": "Disabled",
    }
    # Back in config: the disabled schedule is re-enabled in place, not created again.
    assert summary(deploy(workspace, dry_run, assets, project, NIGHTLY)) == [
        ("nightly", "updated"),
        ("weekly", "updated"),
    ]
    assert sorted((s.name, s.status) for s in stored(dry_run)) == [
        ("nightly", "Active"),
        ("weekly", "Active"),
    ]


def test_existing_duplicates_are_collapsed_to_one(workspace, dry_run, assets, project):
    from azureml.pipeline.core import Schedule, ScheduleRecurrence

    deploy(workspace, dry_run, assets, project, NIGHTLY)
    nightly = next(s for s in stored(dry_run) if s.name == "nightly")
    for _ in range(2):  # what a hand-written `Schedule.create` per deploy leaves behind
        Schedule.create_for_pipeline_endpoint(
            workspace,
            name="nightly",
            pipeline_endpoint_id=nightly.pipeline_endpoint_id,
            experiment_name="chain",
            recurrence=ScheduleRecurrence(frequency="Hour", interval=1),
            _workflow_provider=dry_run.provider,
        )
    changes = deploy(workspace, dry_run, assets, project, NIGHTLY)
    assert summary(changes).count(("nightly", "disabled")) == 2
    active = [s for s in stored(dry_run) if s.name == "nightly" and s.status == "Active"]
    assert [s.id for s in active] == [nightly.id]


def test_plan_reads_and_changes_nothing(workspace, dry_run, assets, project):
    planned = deploy(workspace, dry_run, assets, project, NIGHTLY, plan=True)
    assert summary(planned) == [("nightly", "created"), ("weekly", "created")]
    assert stored(dry_run) == []
    deploy(workspace, dry_run, assets, project, NIGHTLY)
    changed = NIGHTLY.replace("hours: [2]", "hours: [3]")
    assert summary(deploy(workspace, dry_run, assets, project, changed, plan=True)) == [
        ("nightly", "updated"),
        ("weekly", "unchanged"),
    ]
    assert next(s for s in stored(dry_run) if s.name == "nightly").recurrence.hours == [2]


TRIGGER = """
schedules:
  on-new-data:
    pipeline: ingest
    datastore_trigger:
      datastore: trigger
      path: incoming
      data_path_parameter: incoming
      polling_interval: 10
"""


def test_datastore_trigger_passes_the_changed_blob_through_a_datapath_param(
    workspace, dry_run, assets, project
):
    assert summary(deploy(workspace, dry_run, assets, project, TRIGGER)) == [
        ("on-new-data", "created")
    ]
    [schedule] = stored(dry_run)
    assert schedule.recurrence is None
    assert (schedule.datastore_name, schedule.path_on_datastore) == ("trigger", "incoming")
    assert schedule.data_path_parameter_name == "incoming"
    assert schedule.polling_interval == 10
    assert summary(deploy(workspace, dry_run, assets, project, TRIGGER)) == [
        ("on-new-data", "unchanged")
    ]


@pytest.mark.parametrize(
    ("facts_kw", "message"),
    [
        (
            {"datastores": {"trigger": DatastoreFacts("trigger", "AzureFile", "AccountKey")}},
            "watch only AzureBlob datastores; 'trigger' is AzureFile",
        ),
        (
            {"datastores": {"trigger": DatastoreFacts("trigger", "AzureBlob", "Sas")}},
            "registered with an account key; 'trigger' uses Sas",
        ),
        (
            {"datastores": {"trigger": DatastoreFacts("trigger", "AzureBlob", None)}},
            "uses identity-based access",
        ),
        ({"customer_managed_key": True}, "customer-managed keys or private endpoints"),
        ({"private_link": True}, "customer-managed keys or private endpoints"),
    ],
)
def test_datastore_trigger_limits_are_checked(
    workspace, dry_run, assets, project, facts_kw, message
):
    base = facts()
    merged = {**base.__dict__, **facts_kw}
    merged["datastores"] = {**base.datastores, **facts_kw.get("datastores", {})}
    with pytest.raises(ConfigError, match=message) as info:
        deploy(workspace, dry_run, assets, project, TRIGGER, facts=facts(**merged))
    assert "schedules.on-new-data" in str(info.value)
    assert stored(dry_run) == []


def test_trigger_cannot_set_a_parallel_step_dataset_parameter(workspace, dry_run, assets, project):
    text = TRIGGER.replace("pipeline: ingest", "pipeline: batch").replace(
        "data_path_parameter: incoming", "data_path_parameter: scoring_data"
    )
    with pytest.raises(ConfigError, match="read by a ParallelStep"):
        deploy(workspace, dry_run, assets, project, text)


def test_unknown_schedule_parameter_is_a_config_error(workspace, dry_run, assets, project):
    text = NIGHTLY.replace("learning_rate: 0.1", "learning_rat: 0.1")
    with pytest.raises(ConfigError, match=r"parameters.learning_rat: pipeline 'chain' has no"):
        deploy(workspace, dry_run, assets, project, text)


def test_schedule_before_publish_says_so(workspace, dry_run, assets, project):
    config = write_config(project, CONFIG + NIGHTLY)
    backend = make_backend(workspace, config, assets, dry_run)
    with pytest.raises(AmlopsError, match="run the publish stage first"):
        backend.schedule(config.schedules, plan=False, pipelines=[chain_pipeline(project)])


def test_default_start_time_is_in_the_past_everywhere():
    now = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    assert default_start_time(now) == "2026-02-28T00:00:00"


def test_datapath_parameter_from_config_becomes_a_datapath(workspace, dry_run, assets, project):
    text = """
schedules:
  hourly-ingest:
    pipeline: ingest
    parameters: {incoming: trigger/landing/today}
    recurrence: {frequency: Hour, interval: 1}
"""
    assert summary(deploy(workspace, dry_run, assets, project, text)) == [
        ("hourly-ingest", "created")
    ]
    [schedule] = stored(dry_run)
    info = dry_run.caller._schedule_entities[schedule.id].pipeline_submission_info
    path = info.data_path_assignments["incoming"]
    assert (path.data_store_name, path.relative_path) == ("trigger", "landing/today")
    assert info.parameter_assignments == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            NIGHTLY.replace("time_zone: UTC", "time_zone: Mars/Olympus"),
            r"recurrence.time_zone: unknown time zone 'Mars/Olympus'",
        ),
        (
            "\nschedules:\n  s:\n    pipeline: batch\n    parameters: {scoring_data: a/b}\n"
            "    recurrence: {frequency: Day, interval: 1}\n",
            "read by a ParallelStep as a dataset parameter",
        ),
        (
            "\nschedules:\n  s:\n    pipeline: ingest\n    parameters: {incoming: nopath}\n"
            "    recurrence: {frequency: Day, interval: 1}\n",
            r"parameters.incoming: takes 'datastore/path', got 'nopath'",
        ),
    ],
)
def test_bad_schedule_config_fails_even_in_a_plan(
    workspace, dry_run, assets, project, text, message
):
    with pytest.raises(ConfigError, match=message):
        deploy(workspace, dry_run, assets, project, text, plan=True)


def test_a_disabled_schedule_stays_disabled_when_its_definition_changes(
    workspace, dry_run, assets, project
):
    paused = NIGHTLY.replace("    pipeline: chain\n", "    pipeline: chain\n    enabled: false\n")
    deploy(workspace, dry_run, assets, project, NIGHTLY)
    assert ("nightly", "disabled") in summary(deploy(workspace, dry_run, assets, project, paused))
    edited = paused.replace("hours: [2]", "hours: [5]")
    assert ("nightly", "unchanged") in summary(deploy(workspace, dry_run, assets, project, edited))
    nightly = next(s for s in stored(dry_run) if s.name == "nightly")
    assert nightly.status == "Disabled"


def test_dropping_a_trigger_field_the_sdk_cannot_clear_replaces_the_schedule(
    workspace, dry_run, assets, project
):
    """Schedule.update keeps data_path_parameter when given None: the schedule is replaced."""
    deploy(workspace, dry_run, assets, project, TRIGGER)
    [old] = stored(dry_run)
    dropped = TRIGGER.replace("      data_path_parameter: incoming\n", "")
    planned = deploy(workspace, dry_run, assets, project, dropped, plan=True)
    assert [(c.name, c.action) for c in planned] == [
        ("on-new-data", "disabled"),
        ("on-new-data", "created"),
    ]
    assert planned[0].detail["reason"] == (
        "replaced: the SDK cannot clear data_path_parameter in place"
    )
    assert [s.id for s in stored(dry_run)] == [old.id]  # the plan changed nothing
    applied = deploy(workspace, dry_run, assets, project, dropped)
    assert [(c.name, c.action) for c in applied] == [(c.name, c.action) for c in planned]
    after = {s.id: s for s in stored(dry_run)}
    assert after[old.id].status == "Disabled"
    assert after[old.id].data_path_parameter_name == "incoming"
    [new] = [s for s in after.values() if s.id != old.id]
    assert (new.name, new.status) == ("on-new-data", "Active")
    assert applied[1].detail["schedule_id"] == new.id
    assert new.data_path_parameter_name is None
    trigger = dry_run.caller._schedule_entities[new.id].data_store_trigger_info
    assert trigger.data_path_parameter_name is None
    assert (trigger.data_store_name, trigger.path_on_data_store) == ("trigger", "incoming")
    assert summary(deploy(workspace, dry_run, assets, project, dropped)) == [
        ("on-new-data", "unchanged")
    ]


def test_a_trigger_watching_the_container_root_replaces_one_watching_a_path(
    workspace, dry_run, assets, project
):
    """An empty path is not sent as "" (its meaning to the service is unverified) but as None."""
    deploy(workspace, dry_run, assets, project, TRIGGER)
    [old] = stored(dry_run)
    root = TRIGGER.replace("path: incoming\n", 'path: ""\n')
    changes = deploy(workspace, dry_run, assets, project, root)
    assert [(c.action, c.detail.get("reason")) for c in changes] == [
        ("disabled", "replaced: the SDK cannot clear path in place"),
        ("created", None),
    ]
    [new] = [s for s in stored(dry_run) if s.id != old.id]
    assert new.path_on_datastore is None
    assert new.data_path_parameter_name == "incoming"


def test_trigger_changes_the_sdk_can_apply_stay_in_place(workspace, dry_run, assets, project):
    deploy(workspace, dry_run, assets, project, TRIGGER)
    [old] = stored(dry_run)
    changed = TRIGGER.replace("polling_interval: 10", "polling_interval: 30").replace(
        "    pipeline: ingest\n",
        "    pipeline: ingest\n    description: new data\n"
        "    parameters: {incoming: trigger/landing}\n",
    )
    assert summary(deploy(workspace, dry_run, assets, project, changed)) == [
        ("on-new-data", "updated")
    ]
    [schedule] = stored(dry_run)
    assert schedule.id == old.id and schedule.status == "Active"
    assert schedule.polling_interval == 30
    assert schedule.description.startswith("new data [amlops:")
    assert schedule.data_path_parameter_name == "incoming"
    info = dry_run.caller._schedule_entities[schedule.id].pipeline_submission_info
    assert set(info.data_path_assignments) == {"incoming"}
    # Parameters dropped from config: update gets {} (None would keep them), which clears them.
    assert summary(deploy(workspace, dry_run, assets, project, TRIGGER)) == [
        ("on-new-data", "updated")
    ]
    [schedule] = stored(dry_run)
    assert schedule.id == old.id and schedule.polling_interval == 10
    info = dry_run.caller._schedule_entities[schedule.id].pipeline_submission_info
    assert not info.data_path_assignments and not info.parameter_assignments
    assert schedule.description.startswith("[amlops:")
