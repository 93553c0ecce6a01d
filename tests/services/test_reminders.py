"""Reminders end to end: sandbox workspaces synced into a real database, the real slack_sdk
client posting to the Slack sandbox, and the notification table keeping it to once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from slack_sdk.models.blocks import Block
from typer.testing import CliRunner

from bot import clock
from bot.cli.main import app
from bot.services.ports import DeliveryError
from tests.support.slack_helpers import ADMIN_CHANNEL
from tests.support.world import RUNNING, close_world, make_world, observed_token

runner = CliRunner()


def dms(world, user):
    return [m for m in world.slack.messages(user)]


def test_one_owner_with_three_tokens_in_two_workspaces_gets_one_message(world):
    world.slack.add_user(id="U0ALICE", email="alice@example.com", name="Alice", tz="Europe/Paris")
    prod, dev = world.org["prod"], world.org["dev"]
    alice_prod = prod.add_user(user_name="alice@example.com")
    alice_dev = dev.add_user(user_name="alice@example.com")
    observed_token(prod, alice_prod, "p1", 5)
    observed_token(prod, alice_prod, "p2", 4, comment="<!channel> nightly")
    observed_token(dev, alice_dev, "d1", 6)
    world.sync()

    summary = world.remind()

    assert (summary.sent_messages, summary.sent_notifications) == (1, 3)
    [message] = dms(world, "U0ALICE")
    text = str(message["blocks"])
    assert "p1" in text and "p2" in text and "d1" in text
    assert "&lt;!channel&gt; nightly" in text and "<!channel>" not in text  # never broadcast
    assert "CET" in text  # dates in Alice's own time zone
    assert message["text"].startswith("3 of your Databricks tokens will change soon")
    assert {n.status for n in world.notifications()} == {"sent"}
    # Each row keeps its deadline's full time, and the buttons name the row.
    assert all(n.due_at is not None and n.due_at.date() == n.due_date for n in world.notifications())
    assert {f"n{n.id}" for n in world.notifications()} <= set(_button_values(message))
    assert world.remind().sent_messages == 0  # a second run sends nothing again


def _button_values(message) -> list[str]:
    return [
        element.get("value")
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_an_owner_with_80_tokens_gets_a_valid_message_under_50_blocks(world):
    world.slack.add_user(id="U0BUSY", email="busy@example.com", name="Busy")
    prod = world.org["prod"]
    owner = prod.add_user(user_name="busy@example.com")
    for index in range(80):
        observed_token(prod, owner, f"t{index:02d}", 4 + index % 6)
    world.sync()

    summary = world.remind()

    assert summary.sent_notifications == 80 and summary.sent_messages == 1
    [message] = dms(world, "U0BUSY")
    assert len(message["blocks"]) <= 50
    assert "more tokens due" in str(message["blocks"][-1])
    for block in message["blocks"]:
        Block.parse(block).validate_json()


def test_unreachable_owners_go_to_the_admins_channel_with_the_reason(world):
    world.slack.add_user(id="U0GONE", email="gone@example.com", name="Gone", deleted=True)
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="nobody@example.com"), "t-unknown", 5)
    observed_token(prod, prod.add_user(user_name="gone@example.com"), "t-deleted", 5)
    observed_token(prod, prod.add_service_principal(application_id="app-etl"), "t-sp", 5)
    world.sync()

    world.remind()

    [message] = world.slack.messages(ADMIN_CHANNEL)
    text = str(message["blocks"])
    assert "3 tokens without a reachable owner" in message["text"]
    assert "no active Slack user has the email nobody@example.com" in text
    assert "no active Slack user has the email gone@example.com" in text
    assert "service principal with no owner assigned" in text


def test_a_crash_after_recording_sends_the_pending_reminders_once_next_run(world):
    world.slack.add_user(id="U0CARL", email="carl@example.com", name="Carl")
    prod = world.org["prod"]
    owner = prod.add_user(user_name="carl@example.com")
    observed_token(prod, owner, "t1", 5)
    observed_token(prod, owner, "t2", 4)
    world.sync()

    class Crashing:
        def send(self, message):
            raise DeliveryError("other", "the network fell over")

        def preview(self, message):
            return ""

    first = world.remind(sender=Crashing())
    assert first.failed == 2 and dms(world, "U0CARL") == []
    assert {(n.status, n.attempts, n.error) for n in world.notifications()} == {
        ("pending", 1, "the network fell over")
    }

    second = world.remind()
    third = world.remind()

    assert second.sent_messages == 1 and third.sent_messages == 0
    assert len(dms(world, "U0CARL")) == 1


def test_a_user_slack_says_is_gone_is_forgotten_and_routed_to_the_admins(world):
    world.slack.add_user(id="U0LEFT", email="left@example.com", name="Left")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="left@example.com"), "t1", 5)
    world.sync()
    world.slack.fail("chat.postMessage", error="user_disabled")

    world.remind()
    world.remind()

    assert [n.status for n in world.notifications()] == ["failed", "sent"]
    [message] = world.slack.messages(ADMIN_CHANNEL)
    assert "deactivated" in str(message["blocks"])


def test_dry_run_prints_and_records_nothing(world):
    world.slack.add_user(id="U0DORA", email="dora@example.com", name="Dora")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="dora@example.com"), "t-dry", 3)
    world.sync()

    result = runner.invoke(app, ["remind", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "DM to U0DORA" in result.output and "[Confirm scopes]" in result.output
    assert "Nothing was sent or recorded" in result.output
    assert world.notifications() == [] and dms(world, "U0DORA") == []


def test_remind_command_reports_what_it_sent(world):
    world.slack.add_user(id="U0ERIK", email="erik@example.com", name="Erik")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="erik@example.com"), "t1", 2)
    world.sync()
    result = runner.invoke(app, ["remind"])
    assert result.exit_code == 0, result.output
    assert "Sent 2 message(s) covering 2 reminder(s) (1 escalation(s))" in result.output


def test_with_rate_limits_on_500_owners_each_get_exactly_one_message(world):
    prod = world.org["prod"]
    for index in range(500):
        world.slack.add_user(id=f"U{index:04d}", email=f"user{index}@example.com", name=f"User {index}")
        observed_token(prod, prod.add_user(user_name=f"user{index}@example.com"), f"t{index}", 5)
    world.sync()
    world.slack.rate_limits(enabled=True, per_minute=6000)
    world.slack.fail("users.lookupByEmail", status=429, times=2)  # answered 429 with Retry-After: 1
    world.slack.fail("chat.postMessage", status=429, times=2)

    summary = world.remind()

    assert summary.sent_messages == 500 and summary.failed == 0 and summary.left_pending == 0
    assert all(len(dms(world, f"U{index:04d}")) == 1 for index in range(500))
    assert len(world.slack.calls("chat.postMessage")) == 502  # two waited out and retried
    assert world.remind().sent_messages == 0


def test_a_tokens_life_day_by_day(tmp_path, monkeypatch, database_url):
    """Enforcement 30 days after creation; runs every 3 hours for 40 days; owner in New York."""
    world, stack = make_world(
        tmp_path,
        monkeypatch,
        database_url,
        policy="[policy]\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\n",
    )
    try:
        world.slack.add_user(id="U0NYC", email="nyc@example.com", name="Nia", tz="America/New_York")
        prod = world.org["prod"]
        start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
        prod.add_token(
            token_id="t-life",
            owner_id=prod.add_user(user_name="nyc@example.com"),
            comment="etl",
            created_at=start,
            last_used_at=start,
            scopes=["all-apis"],
            inferred_scopes=["sql"],
            autoscope_state=RUNNING,
            expires_at=start + timedelta(days=365),
        )
        world.sync()
        sent_steps = []
        moment = start
        while moment < start + timedelta(days=40):
            with freeze_time(moment):
                world.remind(now=moment)
            moment += timedelta(hours=3)
        for notification in world.notifications():
            sent_steps.append((notification.step, notification.recipient, notification.sent_at))
    finally:
        close_world(world, stack)

    owner_steps = [(step, sent) for step, recipient, sent in sent_steps if recipient == "U0NYC"]
    assert [step for step, _ in owner_steps] == ["14", "7", "3", "1"]
    for _, sent in owner_steps:
        local = sent.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert 9 <= local.hour < 18, local
    escalations = [step for step, recipient, _ in sent_steps if recipient == ADMIN_CHANNEL]
    assert escalations == ["escalation"]
    assert len(world.slack.messages("U0NYC")) == 4


def test_after_a_skipped_week_only_the_latest_step_is_sent(world):
    world.slack.add_user(id="U0SKIP", email="skip@example.com", name="Skip")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="skip@example.com"), "t1", 2)
    world.sync()

    world.remind()

    assert [(n.step, n.recipient) for n in world.notifications()] == [
        ("3", "U0SKIP"),
        ("escalation", ADMIN_CHANNEL),
    ]


def test_with_enforcement_off_no_reminder_promises_a_revocation(tmp_path, monkeypatch, database_url):
    """`policy.enforce` is off by default: past tokenbot's own limit the admins are told and
    nothing is revoked, and the reminder says so (only the Revoke button speaks of revoking)."""
    policy = '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=policy)
    try:
        world.slack.add_user(id="U0IDLE", email="idle@example.com", name="Idle")
        prod = world.org["prod"]
        owner = prod.add_user(user_name="idle@example.com")
        for token_id, idle_days in (("t-idle", 55), ("t-idler", 58)):
            prod.add_token(
                token_id=token_id,
                owner_id=owner,
                comment=f"job {token_id}",
                created_at=clock.now() - timedelta(days=100),
                last_used_at=clock.now() - timedelta(days=idle_days),
                scopes=["sql"],
                expires_at=clock.now() + timedelta(days=300),
            )
        world.sync()

        world.remind()

        [message] = dms(world, "U0IDLE")
    finally:
        close_world(world, stack)
    words = [message["text"], *_texts(message)]
    assert any("the admins are told, nothing is revoked" in text for text in words)
    for text in words:
        assert "revoke" not in text.lower().replace("nothing is revoked", ""), text
    assert "about to act" not in str(message["blocks"])  # Databricks is not the one acting here


def _texts(message) -> list[str]:
    """The words of a message, its buttons and their confirmations left out."""
    found = []
    for block in message["blocks"]:
        if block["type"] in ("section", "header"):
            found.append(block["text"]["text"])
        elif block["type"] == "context":
            found += [element.get("text", "") for element in block["elements"]]
    return found
