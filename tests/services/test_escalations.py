"""Escalations to the admins channel: on time whatever the run times and the owner's quiet hours,
on the very first run for a deadline already inside the window, and every one of them shown,
however many escalate at once (several messages, each recording only what it showed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from slack_sdk.models.blocks import Block
from typer.testing import CliRunner

from bot import clock
from bot.cli.main import app
from tests.support.slack_helpers import ADMIN_CHANNEL
from tests.support.world import RUNNING, close_world, make_world, observed_token

runner = CliRunner()
PARIS = "Europe/Paris"  # UTC+1 in winter: 01:30 UTC is 02:30 there
NIGHT_POLICY = (
    '[policy]\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\nquiet_hours = "18:00-09:00"\n'
)


@pytest.fixture
def night_world(tmp_path, monkeypatch, database_url):
    """Quiet hours on; Paul lives in Paris."""
    world, stack = make_world(
        tmp_path, monkeypatch, database_url, policy=NIGHT_POLICY + "escalate_after_days = 7\n"
    )
    world.slack.add_user(id="U0PAUL", email="paul@example.com", name="Paul", tz=PARIS)
    world.paul = world.org["prod"].add_user(user_name="paul@example.com")
    yield world
    close_world(world, stack)


def night_after(days: int) -> datetime:
    """01:30 UTC (02:30 in Paris) `days` days from now."""
    day = (clock.now() + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC)


def run_every_15_minutes(world, start: datetime, end: datetime) -> None:
    moment = start
    while moment <= end:
        with freeze_time(moment):
            world.remind(now=moment)
        moment += timedelta(minutes=15)


def escalations(world) -> dict[int, object]:
    return {n.token_pk: n for n in world.notifications() if n.step == "escalation"}


def test_an_escalation_goes_out_at_least_escalate_after_days_ahead_whatever_the_run_times(night_world):
    """The 7-day mark falls at 02:30 in Paul's night, a few minutes off the runs' quarter hours."""
    mark = night_after(2)
    offsets = [0, 4, 9, 14]  # minutes past a run: every phase between the runs and the mark
    for offset in offsets:
        due = mark + timedelta(days=7, minutes=offset)
        night_world.org["prod"].add_token(
            token_id=f"t-{offset:02d}",
            owner_id=night_world.paul,
            created_at=due - timedelta(days=30),  # auto-scoping enforces 30 days after creation
            last_used_at=clock.now(),
            expires_at=clock.now() + timedelta(days=365),
            scopes=["all-apis"],
            inferred_scopes=["sql"],
            autoscope_state=RUNNING,
        )
    night_world.sync()

    run_every_15_minutes(night_world, mark - timedelta(hours=1), mark + timedelta(hours=1))

    sent = escalations(night_world)
    assert len(sent) == len(offsets)
    for row in sent.values():
        ahead = row.due_at - row.sent_at
        # Never later than 7 days ahead; never more than one run early.
        assert timedelta(days=7) <= ahead <= timedelta(days=7, minutes=15), (row.due_at, row.sent_at)
    assert night_world.slack.messages("U0PAUL") == []  # Paul's reminders wait for his morning


def test_the_first_run_escalates_a_deadline_already_inside_the_window(tmp_path, monkeypatch, database_url):
    """Installed with a token expiring in two days (escalate_after_days = 3); the first run is at
    02:30 in its owner's night: the admins hear on that run, the owner in the morning."""
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=NIGHT_POLICY)
    try:
        world.slack.add_user(id="U0PAUL", email="paul@example.com", name="Paul", tz=PARIS)
        first_run = night_after(1)
        world.org["prod"].add_token(
            token_id="t-expiring",
            owner_id=world.org["prod"].add_user(user_name="paul@example.com"),
            comment="nightly export",
            created_at=clock.now() - timedelta(days=300),
            last_used_at=clock.now(),
            expires_at=first_run + timedelta(days=2),
            scopes=["sql"],
        )
        world.sync()

        with freeze_time(first_run):
            world.remind(now=first_run)

        [message] = world.slack.messages(ADMIN_CHANNEL)
        assert "1 token need an admin" in message["text"] and "nightly export" in str(message["blocks"])
        assert [(n.step, n.status) for n in world.notifications()] == [("escalation", "sent")]
        assert world.slack.messages("U0PAUL") == []

        morning = first_run + timedelta(hours=6, minutes=30)  # 09:00 in Paris
        with freeze_time(morning):
            world.remind(now=morning)
        assert len(world.slack.messages("U0PAUL")) == 1
        assert len(world.slack.messages(ADMIN_CHANNEL)) == 1  # escalated once
    finally:
        close_world(world, stack)


# ---------------------------------------------------------------------------------------------
# every escalation shown


def button_values(message) -> set[str]:
    return {
        element.get("value")
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def assert_each_row_was_shown_by_its_message(world, rows) -> None:
    by_ts = {m["ts"]: m for m in world.slack.messages(ADMIN_CHANNEL)}
    for row in rows:
        assert row.status == "sent" and row.channel == ADMIN_CHANNEL
        assert f"n{row.id}" in button_values(by_ts[row.message_ts]), f"row {row.id} recorded sent, not shown"


def assert_within_slack_limits(messages) -> None:
    for message in messages:
        assert len(message["blocks"]) <= 50
        for block in message["blocks"]:
            Block.parse(block).validate_json()


def forty_escalating(world) -> None:
    """Olga's 40 tokens, two days from auto-scoping, each with a long comment."""
    world.slack.add_user(id="U0OLGA", email="olga@example.com", name="Olga")
    prod = world.org["prod"]
    owner = prod.add_user(user_name="olga@example.com")
    for index in range(40):
        observed_token(prod, owner, f"t{index:02d}", 2, comment=f"nightly job number {index:02d} " + "x" * 150)
    world.sync()


def test_40_tokens_escalating_in_one_run_all_reach_the_admins_channel(world):
    forty_escalating(world)

    summary = world.remind()

    assert summary.escalations == 40
    rows = [n for n in world.notifications() if n.step == "escalation"]
    assert len(rows) == 40
    assert_each_row_was_shown_by_its_message(world, rows)
    messages = world.slack.messages(ADMIN_CHANNEL)
    assert len(messages) > 1 and len({row.message_ts for row in rows}) == len(messages)
    assert "follow in the next message" in str(messages[0]["blocks"][-1])
    assert_within_slack_limits(messages)
    assert world.remind().sent_messages == 0  # all sent: nothing again


def test_a_dry_run_previews_every_escalation_as_the_run_would_send_them(world):
    forty_escalating(world)

    summary = world.remind(dry_run=True)

    [admins] = [preview for preview in summary.previews if "=== admins channel" in preview]
    assert admins.count("=== admins channel") > 1
    assert all(f"nightly job number {index:02d}" in admins for index in range(40))
    assert world.notifications() == [] and world.slack.messages(ADMIN_CHANNEL) == []


def test_40_overdue_tokens_escalated_by_enforcement_all_reach_the_admins_channel(
    tmp_path, monkeypatch, database_url
):
    policy = '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=policy)
    try:
        prod = world.org["prod"]
        owner = prod.add_user(user_name="owen@example.com")
        for index in range(40):
            prod.add_token(
                token_id=f"idle-{index:02d}",
                owner_id=owner,
                comment=f"an old export {index:02d} " + "y" * 150,
                created_at=clock.now() - timedelta(days=200),
                expires_at=clock.now() + timedelta(days=100),
                last_used_at=clock.now() - timedelta(days=70),
            )
        world.sync()

        result = runner.invoke(app, ["enforce"])

        assert result.exit_code == 0, result.output
        assert "40 escalated to the admins channel" in result.output
        rows = [n for n in world.notifications() if n.step == "overdue"]
        assert len(rows) == 40
        assert_each_row_was_shown_by_its_message(world, rows)
        messages = world.slack.messages(ADMIN_CHANNEL)
        assert len(messages) > 1
        assert_within_slack_limits(messages)
    finally:
        close_world(world, stack)
