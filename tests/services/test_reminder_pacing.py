"""One owner with many tokens: at most one DM a day and three a week, every token named before
its first step, a later run the same day adding to the morning's message. Real database, the
real slack_sdk client against the Slack sandbox, the clock frozen at every hourly run."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from freezegun import freeze_time

from bot.enums import Step
from tests.support.world import close_world, make_world, observed_token

PARIS = ZoneInfo("Europe/Paris")
WORKING_HOURS = "[policy]\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\n"  # quiet 18:00-09:00
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Paris


def run_hourly(world, start, hours):
    """The reminder job every hour; when each new DM to each user was posted."""
    posted: dict[str, list[datetime]] = {}
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        before = {user: len(world.slack.messages(user)) for user in world.users}
        with freeze_time(moment):
            world.remind(now=moment)
        for user in world.users:
            new = len(world.slack.messages(user)) - before[user]
            posted.setdefault(user, []).extend([moment] * new)
    return posted


def test_an_owner_with_12_tokens_over_three_weeks_gets_one_dm_a_day_and_three_a_week(
    tmp_path, monkeypatch, database_url
):
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=WORKING_HOURS)
    try:
        with freeze_time(START):
            world.slack.add_user(id="U0MANY", email="many@example.com", name="Many", tz="Europe/Paris")
            world.users = ["U0MANY"]
            prod = world.org["prod"]
            owner = prod.add_user(user_name="many@example.com")
            # Deadlines spread over three weeks, at all hours of the day.
            for index in range(12):
                observed_token(prod, owner, f"t{index:02d}", 1.3 + index * 19 / 11)
            world.sync()
        posted = run_hourly(world, START, 22 * 24)
        rows = [n for n in world.notifications() if n.recipient == "U0MANY"]
    finally:
        close_world(world, stack)

    dms = posted["U0MANY"]
    per_day = Counter(moment.astimezone(PARIS).date() for moment in dms)
    assert max(per_day.values()) == 1
    assert max(sum(1 for other in dms if first <= other < first + timedelta(days=7)) for first in dms) <= 3
    for moment in dms:
        assert 9 <= moment.astimezone(PARIS).hour < 18
    # Every token is named before its first step (or at the first run, when that step has passed).
    named: dict[int, datetime] = {}
    for row in rows:
        named[row.token_pk] = min(row.sent_at, named.get(row.token_pk, row.sent_at))
    assert len(named) == 12
    for row in rows:
        assert named[row.token_pk] <= max(START, row.due_at - timedelta(days=14))
    assert all(row.status == "sent" and row.step != Step.NARROWED for row in rows)


def token_ids(message) -> str:
    return str(message["blocks"])


class Day:
    """One owner in Paris with a token due in five days, told at 09:00; tokens added later."""

    def __init__(self, world):
        self.world = world
        world.slack.add_user(id="U0DAY", email="day@example.com", name="Day", tz="Europe/Paris")
        self.prod = world.org["prod"]
        self.owner = self.prod.add_user(user_name="day@example.com")
        observed_token(self.prod, self.owner, "t-morning", 5)
        world.sync()
        world.remind(now=START)

    def later(self, hours, **tokens):
        """`hours` after the morning run: these tokens appear (days left each), then a run."""
        moment = START + timedelta(hours=hours)
        with freeze_time(moment):
            for token_id, days_left in tokens.items():
                observed_token(self.prod, self.owner, token_id, days_left)
            self.world.sync()
            return self.world.remind(now=moment)


def day_world(tmp_path, monkeypatch, database_url):
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=WORKING_HOURS)
    with freeze_time(START):
        day = Day(world)
    return world, stack, day


def test_a_deadline_before_tomorrow_morning_is_added_to_the_mornings_message(
    tmp_path, monkeypatch, database_url
):
    world, stack, day = day_world(tmp_path, monkeypatch, database_url)
    try:
        # 14:00 in Paris: one token due tonight (before tomorrow's 09:00), one in ten days.
        day.later(5, t_tonight=0.7, t_later=10)
        [message] = world.slack.messages("U0DAY")
        updates = world.slack.calls("chat.update")
        tomorrow = day.later(24)
        messages = world.slack.messages("U0DAY")
        rows = {(n.token_pk, n.message_ts) for n in world.notifications() if n.recipient == "U0DAY"}
    finally:
        close_world(world, stack)

    assert len(updates) == 1  # the morning's DM, redrawn
    assert "t-morning" in token_ids(message) and "t_tonight" in token_ids(message)
    assert "t_later" not in token_ids(message)  # it can wait for tomorrow's message
    assert tomorrow.sent_messages == 1 and len(messages) == 2
    assert "t_later" in token_ids(messages[1]) and "t_tonight" not in token_ids(messages[1])
    assert len({ts for _, ts in rows}) == 2


def test_an_update_that_fails_is_retried_and_one_slack_cannot_edit_is_posted(
    tmp_path, monkeypatch, database_url
):
    world, stack, day = day_world(tmp_path, monkeypatch, database_url)
    try:
        world.slack.fail("chat.update", error="internal_error")
        failed = day.later(2, t_one=0.8)
        retried = day.later(3)
        world.slack.fail("chat.update", error="message_not_found")
        day.later(4, t_two=0.75)
        messages = world.slack.messages("U0DAY")
        statuses = {n.status for n in world.notifications() if n.recipient == "U0DAY"}
    finally:
        close_world(world, stack)

    assert failed.failed == 1 and retried.sent_notifications == 1
    assert statuses == {"sent"}
    # The morning's DM got t_one by update; t_two could not be added, so it went out on its own.
    assert len(messages) == 2
    assert "t_one" in token_ids(messages[0]) and "t_two" in token_ids(messages[1])
