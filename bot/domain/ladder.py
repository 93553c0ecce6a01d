"""Which reminder step a deadline has reached, and how often one owner may hear of them: pure,
`now` passed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
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


def held_for_quiet_hours(
    now: datetime, tz_name: str, window: tuple[time, time] | None, due_at: datetime
) -> bool:
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


# ---------------------------------------------------------------------------------------------
# pacing: how often one owner hears from tokenbot

MAX_DMS_PER_WEEK = 3  # new reminder DMs to one owner in any 7 days (one a day at most)
NAMING_AHEAD = timedelta(days=7)  # a DM also names deadlines whose first step is this close
_WEEK = timedelta(days=7)
_INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Pace:
    """Where an owner stands: when their next new DM may go out, and, if one goes out now, until
    when it must cover the steps (the next DM cannot come before then)."""

    allowed_at: datetime  # at or before `now`: a new DM may go out now
    covers_until: datetime
    sent_today: bool  # a DM already went out today (the owner's own day)


def pace(
    now: datetime,
    tz_name: str,
    window: tuple[time, time] | None,
    sent: Sequence[datetime],
    per_week: int = MAX_DMS_PER_WEEK,
) -> Pace:
    """`sent`: when the owner's earlier reminder DMs went out (any order, older ones ignored).

    One DM a day: after one, the next waits for tomorrow's working hours. At most `per_week` in
    any 7 days: after that many, the next waits until the oldest of them is a week old."""
    recent = sorted(moment for moment in sent if now - _WEEK < moment <= now)
    today = local_day(now, tz_name)
    sent_today = any(local_day(moment, tz_name) == today for moment in recent)
    morning = next_morning(now, tz_name, window)
    allowed = morning if sent_today else now
    if len(recent) >= per_week:
        allowed = max(allowed, recent[len(recent) - per_week] + _WEEK)
    with_this = [*recent, now]
    covers = morning
    if len(with_this) >= per_week:
        covers = max(covers, with_this[len(with_this) - per_week] + _WEEK)
    return Pace(allowed, covers, sent_today)


def covering_step(due_at: datetime, until: datetime, reminder_days: tuple[int, ...]) -> int | None:
    """The step a message must give a deadline so that no step falls due before `until` uncovered:
    the step due at `until`, or the last one when the deadline comes first."""
    return current_step(due_at, min(until, due_at - _INSTANT), reminder_days)


def local_day(moment: datetime, tz_name: str) -> date:
    return moment.astimezone(_zone(tz_name)).date()


def next_morning(now: datetime, tz_name: str, window: tuple[time, time] | None) -> datetime:
    """When tomorrow's working hours start in the recipient's zone (midnight without quiet hours), UTC."""
    zone = _zone(tz_name)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    start = window[1] if window is not None else time(0)
    return datetime.combine(tomorrow, start, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Reminder:
    """One deadline of one owner, as the pacing sees it."""

    due_at: datetime
    step: int | None  # the step due now; None while its first step is still ahead
    given: int | None  # the nearest step a message already gave it; None: never named to this owner

    @property
    def uncovered(self) -> bool:
        return self.step is not None and (self.given is None or self.given > self.step)


def steps_to_send(
    reminders: Sequence[Reminder], where: Pace, now: datetime, reminder_days: tuple[int, ...]
) -> list[int | None]:
    """For each deadline of one owner, the step their message gives it now, or None to leave it out.

    Nothing while every due step was already given. A new DM (allowed now, or past the week's
    limit because something falls due before the next one may go) gives every deadline the step
    that covers it until the next DM can come, and names every deadline whose first step is within
    NAMING_AHEAD (so every token is named before its first step). After today's DM, only what
    falls due before tomorrow's may go out is sent (added to today's message)."""
    if not any(reminder.uncovered for reminder in reminders):
        return [None] * len(reminders)
    urgent = [r.uncovered and r.due_at <= where.allowed_at for r in reminders]
    new_dm = where.allowed_at <= now or (any(urgent) and not where.sent_today)
    first = max(reminder_days)
    naming = timedelta(days=first) + NAMING_AHEAD
    chosen: list[int | None] = []
    for reminder, cannot_wait in zip(reminders, urgent, strict=True):
        step: int | None = None
        if new_dm:
            step = covering_step(reminder.due_at, where.covers_until, reminder_days)
            if step is None and reminder.given is None and reminder.due_at - now <= naming:
                step = first
        elif cannot_wait:
            step = covering_step(reminder.due_at, where.allowed_at, reminder_days)
        if step is not None and reminder.given is not None and reminder.given <= step:
            step = None  # already given this step or a nearer one
        chosen.append(step)
    return chosen
