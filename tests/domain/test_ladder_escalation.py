"""When an escalation is due: the last run before its moment (`escalate_after_days` before the
deadline) sends it, so the admins hear no later than that, whatever the run times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.ladder import escalation_due

DUE = datetime(2026, 12, 10, 1, 30, tzinfo=UTC)
EVERY = timedelta(minutes=15)


def test_the_run_before_the_moment_sends_it_when_the_next_would_be_late():
    moment = DUE - timedelta(days=7)

    assert not escalation_due(DUE, moment - timedelta(minutes=16), 7, EVERY)  # the next run is in time
    assert escalation_due(DUE, moment - timedelta(minutes=14), 7, EVERY)  # the next run would be late
    assert escalation_due(DUE, moment, 7, EVERY)


def test_without_a_next_run_it_is_due_from_the_moment_on_and_never_after_the_deadline():
    moment = DUE - timedelta(days=3)

    assert not escalation_due(DUE, moment - timedelta(seconds=1), 3)
    assert escalation_due(DUE, moment, 3)
    assert not escalation_due(DUE, DUE, 3, EVERY)  # passed deadlines are enforcement's
