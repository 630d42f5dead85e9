"""The shared deploy policy: versions, publishing and schedule reconciliation, as pure data."""

from __future__ import annotations

from amlops.config import DatastoreTrigger, Recurrence, ScheduleConfig
from amlops.policy import (
    ExistingSchedule,
    decide_publish,
    decide_version,
    plan_schedules,
)

DAILY = Recurrence(frequency="Day", interval=1, hours=(2,), minutes=(30,))


def schedule(name: str = "nightly", pipeline: str = "train", **kw) -> ScheduleConfig:
    if "datastore_trigger" not in kw:
        kw.setdefault("recurrence", DAILY)
    return ScheduleConfig(name=name, pipeline=pipeline, **kw)


def existing(
    id: str,
    name: str = "nightly",
    target: str = "train",
    kind: str = "recurrence",
    active: bool = True,
    fingerprint: str | None = "fp-nightly",
) -> ExistingSchedule:
    return ExistingSchedule(id, name, target, kind, active, fingerprint)


def plan(desired, found, fingerprint=lambda sc: f"fp-{sc.name}", cannot_update=None):
    actions = plan_schedules(
        desired,
        found,
        target=lambda sc: sc.pipeline,
        fingerprint=fingerprint,
        cannot_update=cannot_update,
    )
    return [(a.action, a.name, a.existing.id if a.existing else None, a.reason) for a in actions]


# --- versions ------------------------------------------------------------------------------


def test_a_first_asset_is_version_1_and_the_same_content_stays_unchanged():
    first = decide_version("dataset", "diabetes", "aaa", None)
    assert (first.action, first.version) == ("created", "1")
    same = decide_version("dataset", "diabetes", "aaa", (1, "aaa"))
    assert (same.action, same.version, same.changed) == ("unchanged", "1", False)


def test_changed_content_is_the_next_version_even_when_an_old_one_had_it():
    """Going back to old content is a new version, as Azure registers it."""
    assert decide_version("environment", "env", "old", (4, "new")).version == "5"
    assert decide_version("environment", "env", "old", (4, "new")).action == "updated"


# --- publishing ----------------------------------------------------------------------------


def test_publishing_creates_the_endpoint_at_version_0():
    change = decide_publish("train", "fp1", None, None, {"url": "http://x"})
    assert (change.action, change.version) == ("created", "0")
    assert change.detail == {"url": "http://x", "fingerprint": "fp1"}


def test_publishing_the_default_again_changes_nothing():
    change = decide_publish("train", "fp1", {"0": "fp1"}, "0")
    assert (change.action, change.version) == ("unchanged", "0")


def test_a_changed_pipeline_becomes_the_next_version():
    change = decide_publish("train", "fp3", {"0": "fp1", "1": "fp2"}, "1")
    assert (change.action, change.version) == ("updated", "2")
    assert "reverts" not in change.detail


def test_a_revert_points_the_default_back_at_the_latest_matching_version():
    versions = {"0": "fp1", "1": "fp2", "2": "fp1", "3": "fp3"}
    change = decide_publish("train", "fp1", versions, "3")
    assert (change.action, change.version, change.detail["reverts"]) == ("updated", "2", True)


def test_version_numbers_compare_as_numbers_not_text():
    versions = {str(v): f"fp{v}" for v in range(11)}  # "10" > "9"
    assert decide_publish("train", "new", versions, "10").version == "11"


# --- schedules -----------------------------------------------------------------------------


def test_a_new_schedule_is_created_and_an_unchanged_one_left_alone():
    assert plan([schedule()], []) == [("created", "nightly", None, None)]
    assert plan([schedule()], [existing("s1")]) == [("unchanged", "nightly", "s1", None)]


def test_a_changed_definition_updates_the_schedule_in_place():
    assert plan([schedule()], [existing("s1", fingerprint="fp-old")]) == [
        ("updated", "nightly", "s1", None)
    ]


def test_a_disabled_schedule_of_that_name_is_reenabled_by_updating_it():
    found = [existing("s1", active=False)]
    assert plan([schedule()], found) == [("updated", "nightly", "s1", None)]


def test_enabled_false_disables_and_then_stays_put():
    off = schedule(enabled=False)
    assert plan([off], [existing("s1")]) == [
        ("disabled", "nightly", "s1", "enabled: false in config")
    ]
    assert plan([off], [existing("s1", active=False)]) == [("unchanged", "nightly", "s1", None)]
    assert plan([off], []) == [("unchanged", "nightly", None, None)]


def test_duplicates_of_a_name_are_disabled_and_one_is_kept():
    found = [existing("s1", fingerprint="x"), existing("s2"), existing("s3", active=False)]
    assert plan([schedule()], found) == [
        ("disabled", "nightly", "s2", "duplicate name"),
        ("updated", "nightly", "s1", None),
    ]


def test_a_schedule_cannot_change_target_or_kind_in_place_so_it_is_replaced():
    other_target = [existing("s1", target="batch_score")]
    assert plan([schedule()], other_target) == [
        ("disabled", "nightly", "s1", "replaced"),
        ("created", "nightly", None, None),
    ]
    trigger = DatastoreTrigger(datastore="workspaceblobstore", path="in")
    assert plan([schedule(datastore_trigger=trigger)], [existing("s1")]) == [
        ("disabled", "nightly", "s1", "replaced"),
        ("created", "nightly", None, None),
    ]


def test_managed_schedules_gone_from_config_are_disabled_and_hand_made_ones_kept():
    found = [
        existing("s1", name="old-amlops"),
        existing("s2", name="made-by-hand", fingerprint=None),
        existing("s3", name="old-and-off", active=False),
    ]
    assert plan([], found) == [("disabled", "old-amlops", "s1", "removed from config")]


def test_a_configured_name_claims_a_hand_made_schedule_of_that_name():
    """Names in config belong to config: a hand-made 'nightly' is adopted and updated."""
    assert plan([schedule()], [existing("s1", fingerprint=None)]) == [
        ("updated", "nightly", "s1", None)
    ]


def test_a_target_not_known_yet_means_create():
    """A plan before the endpoint exists: nothing can be updated in place."""
    actions = plan_schedules(
        [schedule()], [existing("s1")], target=lambda sc: None, fingerprint=lambda sc: "fp"
    )
    assert [(a.action, a.existing.id if a.existing else None) for a in actions] == [
        ("disabled", "s1"),
        ("created", None),
    ]


def test_what_the_backend_cannot_update_in_place_is_replaced_with_its_reason():
    asked = []

    def cannot_update(found, sc):
        asked.append((found.id, sc.name))
        return "the SDK cannot clear path in place" if found.id == "s1" else None

    changed = [existing("s1", fingerprint="fp-old")]
    assert plan([schedule()], changed, cannot_update=cannot_update) == [
        ("disabled", "nightly", "s1", "replaced: the SDK cannot clear path in place"),
        ("created", "nightly", None, None),
    ]
    assert asked == [("s1", "nightly")]
    # Another schedule of that name that can be updated is kept instead of creating one.
    found = [existing("s1", fingerprint="fp-old"), existing("s2", fingerprint="fp-old")]
    assert plan([schedule()], found, cannot_update=cannot_update) == [
        ("disabled", "nightly", "s1", "replaced: the SDK cannot clear path in place"),
        ("updated", "nightly", "s2", None),
    ]


def test_a_disabled_schedule_that_cannot_be_updated_stays_disabled_and_one_is_created():
    found = [existing("s1", active=False)]
    assert plan([schedule()], found, cannot_update=lambda s, sc: "no") == [
        ("created", "nightly", None, None)
    ]


def test_enabled_false_does_not_ask_whether_the_schedule_can_be_updated():
    """Pausing changes only the status, which every backend can set in place."""

    def never(found, sc):
        raise AssertionError("asked")

    off = schedule(enabled=False)
    assert plan([off], [existing("s1")], cannot_update=never) == [
        ("disabled", "nightly", "s1", "enabled: false in config")
    ]
