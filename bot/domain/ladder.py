"""Which reminder step a deadline has reached: pure, `now` passed in."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache


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
