"""Which reminder step a deadline has reached: pure, `now` passed in."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=16)
def _steps_nearest_first(reminder_days: tuple[int, ...]) -> tuple[tuple[timedelta, int], ...]:
    return tuple(sorted((timedelta(days=days), days) for days in reminder_days))


def current_step(due_at: datetime, now: datetime, reminder_days: tuple[int, ...]) -> int | None:
    """The latest reminder step whose time has come (days before the deadline), 0 once the
    deadline has passed, None while no step is due yet.

    With steps (14, 7, 3, 1), a deadline 5 days away is at step 7: the 14- and 7-day reminders are
    due, and only the latest one is worth sending.
    """
    remaining = due_at - now
    if remaining <= timedelta(0):
        return 0
    for before, days in _steps_nearest_first(reminder_days):
        if remaining <= before:
            return days
    return None


def quiet_until(now: datetime, tz_name: str, window: tuple[time, time] | None) -> datetime | None:
    """When the recipient's quiet hours end (UTC), if `now` falls inside them; None otherwise.

    The window is in the recipient's own time zone and may wrap midnight ("18:00-09:00").
    An unknown time zone counts as UTC.
    """
    if window is None:
        return None
    zone = _zone(tz_name)
    local = now.astimezone(zone)
    start, end = window
    clock_time = local.time()
    inside = start <= clock_time < end if start < end else (clock_time >= start or clock_time < end)
    if not inside:
        return None
    end_day = local.date() if clock_time < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def held_for_quiet_hours(now: datetime, tz_name: str, window: tuple[time, time] | None,
                         due_at: datetime) -> bool:
    """A message due at night waits for the morning, unless waiting would take it past the deadline."""
    until = quiet_until(now, tz_name, window)
    return until is not None and until < due_at


def escalation_due(
    due_at: datetime, now: datetime, escalate_after_days: int, next_run_in: timedelta = timedelta(0)
) -> bool:
    """The admins should hear of an undecided token: its escalation moment (`escalate_after_days`
    before the deadline) comes before the next run, so this run is the last one in time."""
    return now < due_at <= now + timedelta(days=escalate_after_days) + next_run_in


@lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
