"""When an Azure ML v1 ``ScheduleRecurrence`` fires, so local schedules fire when Azure would.

Semantics follow the Azure ML SDK docstring of ``ScheduleRecurrence`` and the Logic Apps
recurrence docs it is built on ("Schedules for recurring triggers in Azure Logic Apps workflows",
learn.microsoft.com/azure/logic-apps/concepts-schedule-automated-recurring-tasks-workflows):

- Fire times are computed from the start time (the anchor); past ones are discarded, and none is
  ever earlier than the anchor.
- Hours or minutes left out of a Day/Week schedule come from the anchor: the docs' example
  "Run daily at 8 AM *plus* the minute-mark from when you save your logic app" is hours=[8] with
  no minutes, so hours without minutes keeps the anchor's minute (not minute 0).
- ScheduleRecurrence's docstring: if start_time matches the hours and minutes, the first run is
  not at start_time but at the next calculated run time.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from amlops.config import Recurrence

__all__ = ["anchor_of", "describe", "fires_between", "next_fire", "zone"]

MAX_FIRES = 1000

# Azure ML TimeZone values that tzlocal's Windows table lacks.
_EXTRA_WINDOWS = {
    "Mid-Atlantic Standard Time": "Etc/GMT+2",  # UTC-02 all year; POSIX sign is inverted
    "Kamchatka Standard Time": "Asia/Kamchatka",
}
_WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STEPS = {"Minute": timedelta(minutes=1), "Hour": timedelta(hours=1)}


def default_start_time(now: datetime | None = None) -> str:
    """Yesterday 00:00: in the past in every time zone, so creation never fires a run."""
    now = now or datetime.now(UTC)
    return (now - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00")


def describe(recurrence: Recurrence) -> str:
    """In words, e.g. "every 2 days at 02:30 (UTC)", for summaries and listings."""
    unit = recurrence.frequency.lower()
    every = f"every {unit}" if recurrence.interval == 1 else f"every {recurrence.interval} {unit}s"
    if recurrence.week_days:
        every += " on " + ", ".join(recurrence.week_days)
    if recurrence.hours or recurrence.minutes:
        # What is left out comes from the start, which defaults to midnight.
        start = datetime.fromisoformat(recurrence.start_time or "2000-01-01T00:00")
        hours = recurrence.hours or (start.hour,)
        minutes = recurrence.minutes or (start.minute,)
        every += " at " + ", ".join(f"{h:02}:{m:02}" for h in hours for m in minutes)
    return f"{every} ({recurrence.time_zone})"


def zone(name: str) -> ZoneInfo:
    """The zone for an Azure ML time zone name (Windows style, e.g. "W. Europe Standard Time"),
    "UTC" or an IANA name."""
    iana = _EXTRA_WINDOWS.get(name) or win_tz.get(name) or name
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise ValueError(
        f"unknown time zone {name!r}: must be an Azure ML time zone name "
        f'(like "W. Europe Standard Time") or an IANA name (like "Europe/Berlin")'
    )


def anchor_of(recurrence: Recurrence, created: datetime) -> datetime:
    """When the recurrence starts counting: its start_time in its zone, else ``created``."""
    if recurrence.start_time is None:
        _require_aware(created, "created")
        return created
    tz = zone(recurrence.time_zone)
    return _instant(datetime.fromisoformat(recurrence.start_time), tz).astimezone(tz)


def next_fire(recurrence: Recurrence, after: datetime, anchor: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware UTC), counting from ``anchor``."""
    _require_aware(after, "after")
    _require_aware(anchor, "anchor")
    after, anchor = after.astimezone(UTC), anchor.astimezone(UTC)
    step = _STEPS.get(recurrence.frequency)
    if step is not None:
        # Minute and Hour count elapsed time, not wall-clock time, so plain UTC arithmetic.
        if after < anchor:
            return anchor
        period = step * recurrence.interval
        return anchor + ((after - anchor) // period + 1) * period
    return _next_calendar(recurrence, after, anchor)


def fires_between(
    recurrence: Recurrence, start: datetime, end: datetime, anchor: datetime
) -> list[datetime]:
    """All fire times in (start, end], at most MAX_FIRES of them."""
    fires: list[datetime] = []
    current = start
    while len(fires) < MAX_FIRES:
        current = next_fire(recurrence, current, anchor)
        if current > end:
            break
        fires.append(current)
    return fires


def _next_calendar(recurrence: Recurrence, after: datetime, anchor: datetime) -> datetime:
    tz = zone(recurrence.time_zone)
    local = anchor.astimezone(tz)
    here = after.astimezone(tz).date()
    interval = recurrence.interval
    scheduled = bool(recurrence.hours or recurrence.minutes)
    if scheduled:
        times = sorted(
            {
                time(h, m)
                for h in recurrence.hours or (local.hour,)
                for m in recurrence.minutes or (local.minute,)
            }
        )
    else:
        times = [local.time()]

    days_in: Callable[[int], list[date]]
    if recurrence.frequency == "Day":
        first = local.date()
        estimate = (here - first).days // interval

        def days_in(k: int) -> list[date]:
            return [first + timedelta(days=k * interval)]

    elif recurrence.frequency == "Week":
        monday = local.date() - timedelta(days=local.weekday())
        offsets = sorted({_WEEK_DAYS.index(d) for d in recurrence.week_days} or {local.weekday()})
        estimate = (here - monday).days // (7 * interval)

        def days_in(k: int) -> list[date]:
            return [monday + timedelta(days=7 * k * interval + o) for o in offsets]

    elif recurrence.frequency == "Month":
        months = local.year * 12 + local.month - 1
        estimate = (here.year * 12 + here.month - 1 - months) // interval

        def days_in(k: int) -> list[date]:
            year, month = divmod(months + k * interval, 12)
            last = calendar.monthrange(year, month + 1)[1]
            return [date(year, month + 1, min(local.day, last))]

    else:
        raise ValueError(f"unknown recurrence frequency {recurrence.frequency!r}")

    # Jump straight to the period holding `after` (one early, as a DST shift can move a fire
    # time across midnight), so far-future lookups cost a few periods, not a walk from the anchor.
    k = max(0, estimate - 1)
    while True:
        fires = [_instant(datetime.combine(d, t), tz) for d in days_in(k) for t in times]
        ok = [f for f in fires if f > after and (f > anchor if scheduled else f >= anchor)]
        if ok:
            return min(ok)
        k += 1


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``tz``.

    In a fall-back fold it is the first occurrence; in a spring-forward gap, the end of the gap.
    """
    early_offset = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if early_offset.astimezone(tz).replace(tzinfo=None) == wall:
        return early_offset
    # In a gap, fold=1 reads the wall time with the later offset, landing before the transition,
    # and fold=0 with the earlier one, landing after it; bisect for the transition second.
    lo = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
    hi = math.ceil(early_offset.timestamp())
    after_gap = early_offset.astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after_gap:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
