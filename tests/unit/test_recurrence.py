"""Local schedules fire at the wall-clock times Azure ML v1 would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from amlops.config import Recurrence
from amlops.recurrence import MAX_FIRES, anchor_of, describe, fires_between, next_fire, zone

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(rec: Recurrence, start: datetime, end: datetime, created: datetime = CREATED):
    return fires_between(rec, start, end, anchor_of(rec, created))


def test_daily_wall_clock_time_survives_both_dst_changes_of_2026():
    # Berlin (W. Europe) is UTC+1 until 2026-03-29 02:00, when clocks jump to 03:00 (UTC+2);
    # on 2026-10-25 03:00 they go back to 02:00 (UTC+1), so 02:30 happens twice.
    rec = Recurrence("Day", 1, hours=(2,), minutes=(30,), time_zone="W. Europe Standard Time")
    spring = fires(rec, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert spring == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: first instant after the gap, 03:00 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    autumn = fires(rec, utc(2026, 10, 23, 12), utc(2026, 10, 26, 12))
    assert autumn == [
        utc(2026, 10, 24, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 twice: once only, at the first (CEST) one
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]


def test_weekly_monday_to_friday_at_six():
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
    rec = Recurrence("Week", 1, hours=(6,), minutes=(0,), week_days=days)
    # Created on Wednesday 2026-01-07 at 10:00, so that day's 06:00 is already past.
    got = fires(rec, utc(2026, 1, 7, 10), utc(2026, 1, 15), created=utc(2026, 1, 7, 10))
    assert got == [utc(2026, 1, d, 6) for d in (8, 9, 12, 13, 14)]


def test_every_other_week_skips_the_weeks_between():
    rec = Recurrence("Week", 2, hours=(18,), minutes=(30,), week_days=("Monday", "Wednesday"))
    # Anchor week starts Monday 2026-01-05; the week of 2026-01-12 is skipped.
    got = fires(rec, utc(2026, 1, 5), utc(2026, 1, 25), created=utc(2026, 1, 5))
    assert got == [utc(2026, 1, d, 18, 30) for d in (5, 7, 19, 21)]


def test_weekly_without_days_repeats_the_anchor_weekday_and_time():
    rec = Recurrence("Week", 1, start_time="2026-01-08T09:15")  # a Thursday
    got = fires(rec, utc(2026, 1, 1), utc(2026, 1, 23))
    assert got == [utc(2026, 1, 8, 9, 15), utc(2026, 1, 15, 9, 15), utc(2026, 1, 22, 9, 15)]


def test_every_15_minutes_counts_from_the_anchor():
    rec = Recurrence("Minute", 15, start_time="2026-01-01T00:07")
    anchor = anchor_of(rec, CREATED)
    assert next_fire(rec, utc(2026, 1, 1, 0, 30), anchor) == utc(2026, 1, 1, 0, 37)
    assert fires_between(rec, utc(2026, 1, 1), utc(2026, 1, 1, 1), anchor) == [
        utc(2026, 1, 1, 0, m) for m in (7, 22, 37, 52)
    ]


def test_every_two_days_from_a_past_start_matches_the_logic_apps_example():
    # Logic Apps docs: start 2017-09-07 14:00, every two days, now 2017-09-08 13:00
    # -> first run 2017-09-09 14:00, then 09-11, 09-13.
    rec = Recurrence("Day", 2, start_time="2017-09-07T14:00:00")
    got = fires(rec, utc(2017, 9, 8, 13), utc(2017, 9, 13, 23))
    assert got == [utc(2017, 9, 9, 14), utc(2017, 9, 11, 14), utc(2017, 9, 13, 14)]


def test_monthly_from_the_31st_clamps_to_month_end_without_drifting():
    rec = Recurrence("Month", 1, start_time="2026-01-31T09:00")
    got = fires(rec, utc(2026, 1, 1), utc(2026, 5, 1))
    assert got == [
        utc(2026, 1, 31, 9),
        utc(2026, 2, 28, 9),
        utc(2026, 3, 31, 9),
        utc(2026, 4, 30, 9),
    ]


@pytest.mark.parametrize(
    ("rec", "fire", "following"),
    [
        (
            Recurrence("Minute", 15, start_time="2026-01-01T00:00"),
            utc(2026, 1, 1, 0, 15),
            utc(2026, 1, 1, 0, 30),
        ),
        (
            Recurrence("Hour", 3, start_time="2026-01-01T00:00"),
            utc(2026, 1, 1, 3),
            utc(2026, 1, 1, 6),
        ),
        (
            Recurrence("Day", 1, hours=(8,), minutes=(0, 30)),
            utc(2026, 1, 2, 8),
            utc(2026, 1, 2, 8, 30),
        ),
        (
            Recurrence("Month", 1, start_time="2026-01-15T12:00"),
            utc(2026, 2, 15, 12),
            utc(2026, 3, 15, 12),
        ),
    ],
)
def test_next_fire_is_strictly_after_its_argument(rec, fire, following):
    anchor = anchor_of(rec, CREATED)
    assert next_fire(rec, fire - (following - fire) / 2, anchor) == fire
    assert next_fire(rec, fire, anchor) == following


@pytest.mark.parametrize(
    ("rec", "first"),
    [
        (Recurrence("Minute", 10, start_time="2026-06-01T12:05"), utc(2026, 6, 1, 12, 5)),
        (
            Recurrence("Day", 1, hours=(8,), minutes=(0,), start_time="2026-06-01T12:00"),
            utc(2026, 6, 2, 8),
        ),
        (
            Recurrence("Week", 1, week_days=("Monday",), start_time="2026-06-03T07:00"),
            utc(2026, 6, 8, 7),
        ),
        (Recurrence("Month", 1, start_time="2026-06-30T23:00"), utc(2026, 6, 30, 23)),
    ],
)
def test_nothing_fires_before_the_anchor(rec, first):
    anchor = anchor_of(rec, CREATED)
    assert next_fire(rec, utc(2020, 1, 1), anchor) == first


def test_start_time_matching_the_hours_and_minutes_first_fires_at_the_next_run():
    # ScheduleRecurrence docstring: if start_time matches hours and minutes, the first run is
    # not at start_time but at the next calculated run time.
    rec = Recurrence("Day", 1, hours=(9,), minutes=(0,), start_time="2026-03-02T09:00")
    assert next_fire(rec, utc(2026, 1, 1), anchor_of(rec, CREATED)) == utc(2026, 3, 3, 9)


def test_without_hours_or_minutes_a_day_schedule_starts_at_the_anchor():
    rec = Recurrence("Day", 1, start_time="2026-03-02T09:00")
    assert next_fire(rec, utc(2026, 1, 1), anchor_of(rec, CREATED)) == utc(2026, 3, 2, 9)


def test_hours_without_minutes_keep_the_minute_of_the_anchor():
    # Logic Apps docs: hours=[8] and no minutes runs "daily at 8 AM plus the minute-mark from
    # when you save your logic app".
    rec = Recurrence("Day", 1, hours=(8, 20))
    created = utc(2026, 1, 5, 10, 17, 42)
    assert fires(rec, created, utc(2026, 1, 6, 23), created=created) == [
        utc(2026, 1, 5, 20, 17),
        utc(2026, 1, 6, 8, 17),
        utc(2026, 1, 6, 20, 17),
    ]


def test_minutes_without_hours_keep_the_hour_of_the_anchor():
    rec = Recurrence("Day", 1, minutes=(0, 45), start_time="2026-01-05T10:17")
    got = fires(rec, utc(2026, 1, 1), utc(2026, 1, 6, 23))
    assert got == [utc(2026, 1, 5, 10, 45), utc(2026, 1, 6, 10, 0), utc(2026, 1, 6, 10, 45)]


def test_start_time_is_read_in_the_schedules_zone():
    rec = Recurrence("Hour", 1, time_zone="Tokyo Standard Time", start_time="2026-01-01T09:00")
    assert anchor_of(rec, CREATED) == utc(2026, 1, 1, 0)


def test_without_start_time_the_creation_time_is_the_anchor():
    rec = Recurrence("Minute", 5)
    created = utc(2026, 1, 1, 10, 2, 30)
    assert anchor_of(rec, created) == created
    assert next_fire(rec, created, created) == utc(2026, 1, 1, 10, 7, 30)


def test_ten_years_ahead_of_the_anchor_is_computed_not_walked():
    rec = Recurrence("Minute", 1, start_time="2026-01-01T00:00")
    anchor = anchor_of(rec, CREATED)
    assert next_fire(rec, utc(2036, 1, 1, 0, 0, 30), anchor) == utc(2036, 1, 1, 0, 1)
    daily = Recurrence("Day", 1, hours=(6,), minutes=(0,), start_time="2026-01-01T00:00")
    assert next_fire(daily, utc(2036, 1, 1, 7), anchor_of(daily, CREATED)) == utc(2036, 1, 2, 6)


def test_fires_between_is_capped():
    rec = Recurrence("Minute", 1, start_time="2026-01-01T00:00")
    got = fires(rec, utc(2025, 12, 31), utc(2026, 2, 1))
    assert len(got) == MAX_FIRES
    assert got[0] == utc(2026, 1, 1) and got[-1] == utc(2026, 1, 1, 16, 39)


def test_iana_names_are_accepted():
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    rec = Recurrence("Day", 1, hours=(9,), minutes=(0,), time_zone="America/New_York")
    assert next_fire(rec, utc(2026, 1, 5), CREATED) == utc(2026, 1, 5, 14)  # 09:00 EST


@pytest.mark.parametrize(
    ("name", "hours"),
    [
        ("UTC", 0),
        ("W. Europe Standard Time", 2),  # summer time
        ("Mid-Atlantic Standard Time", -2),  # missing from tzlocal's table
        ("Kamchatka Standard Time", 12),  # missing from tzlocal's table
    ],
)
def test_windows_names_map_to_their_zone(name, hours):
    offset = utc(2026, 7, 1).astimezone(zone(name)).utcoffset()
    assert offset == timedelta(hours=hours)


def test_every_azure_ml_time_zone_is_known():
    schedule = pytest.importorskip("azureml.pipeline.core.schedule")
    for tz in schedule.TimeZone:
        zone(tz.value)


def test_unknown_zone_names_the_value_and_what_is_accepted():
    with pytest.raises(ValueError) as err:
        zone("Atlantis Standard Time")
    message = str(err.value)
    assert "'Atlantis Standard Time'" in message
    assert "Azure ML time zone name" in message and "W. Europe Standard Time" in message
    assert "IANA" in message and "Europe/Berlin" in message


def test_naive_datetimes_are_refused():
    rec = Recurrence("Minute", 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire(rec, datetime(2026, 1, 1), CREATED)


@pytest.mark.parametrize(
    ("recurrence", "words"),
    [
        (Recurrence("Day", 1, (2,), (30,)), "every day at 02:30 (UTC)"),
        (Recurrence("Minute", 15), "every 15 minutes (UTC)"),
        (
            Recurrence("Week", 2, (6,), (0,), ("Monday", "Friday"), "W. Europe Standard Time"),
            "every 2 weeks on Monday, Friday at 06:00 (W. Europe Standard Time)",
        ),
        # What is left out comes from the start: its minute here, midnight by default.
        (Recurrence("Day", 1, (8,), start_time="2026-01-01T10:20"), "every day at 08:20 (UTC)"),
        (Recurrence("Day", 1, (), (15,)), "every day at 00:15 (UTC)"),
    ],
)
def test_describe_says_when_a_schedule_fires(recurrence, words):
    assert describe(recurrence) == words
