"""Slack misbehaving: 429 storms, 500s, an unreachable API and a revoked bot token. Reminders are
never lost: what could not be sent stays pending and goes out, once, when Slack is back."""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy import select

from bot import db
from bot.models import Notification
from tests.support.world import observed_token


def seed(world, owners: int = 5):
    prod = world.org["prod"]
    for index in range(owners):
        world.slack.add_user(id=f"U0S{index}", email=f"s{index}@example.com", name=f"S {index}")
        observed_token(prod, prod.add_user(user_name=f"s{index}@example.com"), f"t{index}", 5)
    world.sync()


def statuses(world) -> Counter:
    with db.session_scope(world.engine) as session:
        return Counter(session.execute(select(Notification.status)).scalars())


def delivered(world, owners: int = 5) -> list[int]:
    return [len(world.slack.messages(f"U0S{index}")) for index in range(owners)]


def test_a_storm_of_429s_is_waited_out(world):
    seed(world)
    world.slack.fail("chat.postMessage", status=429, times=6)
    summary = world.remind()
    assert summary.failed == 0 and delivered(world) == [1] * 5


def test_server_errors_leave_reminders_pending_for_the_next_run(world):
    seed(world)
    world.slack.fail("chat.postMessage", status=500, times=100)
    first = world.remind()
    assert first.failed == 5 and statuses(world) == {"pending": 5}
    world.slack.clear_faults()
    second = world.remind()
    assert second.sent_messages == 5 and delivered(world) == [1] * 5
    assert statuses(world) == {"sent": 5}


def test_slack_unreachable_loses_nothing(world):
    seed(world)
    world.slack.down()
    summary = world.remind()
    assert summary.lookups_failed == 5 and summary.sent_messages == 0
    world.slack.up()
    world.remind()
    assert delivered(world) == [1] * 5 and statuses(world) == {"sent": 5}


def test_a_revoked_bot_token_is_logged_and_nothing_is_lost(world, caplog):
    seed(world)
    world.remind()  # lookups cached, first messages sent
    for index in range(5):
        observed_token(world.org["prod"], world.org["prod"].add_user(user_name=f"s{index}@example.com"),
                       f"late{index}", 2)
    world.sync()
    world.slack.fail("chat.postMessage", error="invalid_auth", times=100)
    with caplog.at_level(logging.WARNING):
        summary = world.remind()
    assert summary.failed > 0
    assert "invalid_auth" in caplog.text
    assert statuses(world)["pending"] > 0
    world.slack.clear_faults()
    world.remind()
    assert statuses(world)["pending"] == 0
