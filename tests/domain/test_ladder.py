"""Pacing an owner's reminder DMs: pure rules, `now` passed in."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from bot.domain.ladder import Reminder, pace, steps_to_send

STEPS = (14, 7, 3, 1)
QUIET = (time(18, 0), time(9, 0))
MONDAY = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # 11:00 in Paris


def days(n: float) -> timedelta:
    return timedelta(days=n)


def test_a_first_dm_may_go_now_and_covers_steps_until_tomorrow_morning():
    where = pace(MONDAY, "Europe/Paris", QUIET, sent=[])

    assert where.allowed_at == MONDAY and not where.sent_today
    assert where.covers_until == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Paris


def test_after_todays_dm_the_next_waits_for_tomorrow_morning_in_the_owners_zone():
    where = pace(MONDAY + timedelta(hours=5), "America/New_York", QUIET, sent=[MONDAY])

    assert where.sent_today
    assert where.allowed_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 in New York


def test_three_dms_in_a_week_hold_the_fourth_until_the_first_is_a_week_old():
    sent = [MONDAY - days(6), MONDAY - days(4), MONDAY - days(2)]

    where = pace(MONDAY, "UTC", QUIET, sent)

    assert where.allowed_at == MONDAY + days(1)


def test_the_third_dm_of_a_week_covers_every_step_until_the_first_is_a_week_old():
    where = pace(MONDAY, "UTC", QUIET, sent=[MONDAY - days(5), MONDAY - days(3)])
    deadline = MONDAY + days(2.5)  # its 1-day step falls before the next DM may go

    [step] = steps_to_send([Reminder(deadline, 3, None)], where, MONDAY, STEPS)

    assert where.covers_until == MONDAY + days(2)
    assert step == 1


def test_nothing_goes_while_every_due_step_was_given():
    where = pace(MONDAY, "UTC", QUIET, sent=[])
    already = Reminder(MONDAY + days(5), 7, given=3)  # a message gave it its 3-day step early
    ahead = Reminder(MONDAY + days(18), None, given=None)

    assert steps_to_send([already, ahead], where, MONDAY, STEPS) == [None, None]


def test_a_dm_names_deadlines_a_week_ahead_of_their_first_step():
    where = pace(MONDAY, "UTC", QUIET, sent=[])
    due = Reminder(MONDAY + days(6), 7, None)
    ahead = Reminder(MONDAY + days(20), None, None)
    too_far = Reminder(MONDAY + days(22), None, None)

    assert steps_to_send([due, ahead, too_far], where, MONDAY, STEPS) == [7, 14, None]


def test_after_todays_dm_only_what_falls_due_before_tomorrow_morning_is_sent():
    later = MONDAY + timedelta(hours=3)
    where = pace(later, "UTC", QUIET, sent=[MONDAY])
    tonight = Reminder(later + timedelta(hours=12), 1, None)
    next_week = Reminder(later + days(6), 7, None)

    assert steps_to_send([tonight, next_week], where, later, STEPS) == [1, None]


def test_past_the_weeks_limit_what_cannot_wait_goes_out_with_everything_else():
    sent = [MONDAY - days(6), MONDAY - days(4), MONDAY - days(2)]
    where = pace(MONDAY, "UTC", QUIET, sent)
    tonight = Reminder(MONDAY + timedelta(hours=10), 1, None)  # a token made today
    in_three_days = Reminder(MONDAY + days(3), 7, given=7)  # its 3-day step comes before the next DM

    assert steps_to_send([tonight, in_three_days], where, MONDAY, STEPS) == [1, 1]
