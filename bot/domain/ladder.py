"""Which reminder step a deadline has reached: pure, `now` passed in."""

from __future__ import annotations

from datetime import datetime, timedelta


def current_step(due_at: datetime, now: datetime, reminder_days: tuple[int, ...]) -> int | None:
    """The latest reminder step whose time has come (days before the deadline), 0 once the
    deadline has passed, None while no step is due yet.

    With steps (14, 7, 3, 1), a deadline 5 days away is at step 7: the 14- and 7-day reminders are
    due, and only the latest one is worth sending.
    """
    if due_at <= now:
        return 0
    reached = [days for days in reminder_days if now >= due_at - timedelta(days=days)]
    return min(reached) if reached else None
