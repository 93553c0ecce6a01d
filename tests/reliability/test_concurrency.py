"""Many hands on one token at once, through the real HTTP app: 20 parallel clicks on the same
Revoke, and two admins revoking together, make one DELETE and one applied decision."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from bot import db
from bot.models import Decision
from tests.support.bot_server import running_bot, wait_for
from tests.support.slack_helpers import ADMIN_CHANNEL, ADMIN_USER
from tests.support.world import close_world, make_world, observed_token

OWNER = "U0CONC"


@pytest.fixture
def bot(tmp_path, monkeypatch, database_url):
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy='[policy]\nquiet_hours = "off"\n',
                              slack_toml='[slack]\nadmins = ["U0ADMIN", "U0ADMIN2"]\nadmin_channel = "C0ADMINS"\n')
    world.slack.add_user(id=OWNER, email="conc@example.com", name="Con")
    world.slack.add_user(id="U0ADMIN2", email="admin2@example.com", name="Second Admin")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="conc@example.com"), "tok-c", 2)  # escalated to admins too
    world.sync()
    world.remind()
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world
    close_world(world, stack)


def revokes(world):
    """The revoke attempts recorded (not those whose claim is still under way)."""
    with db.session_scope(world.engine) as session:
        query = select(Decision).where(Decision.action == "revoke", Decision.status != "in_progress")
        return list(session.execute(query).scalars())


def deletes(world):
    return [r for r in world.org["prod"].requests if r.method == "DELETE"]


def test_twenty_parallel_clicks_make_one_delete(bot):
    [message] = bot.slack.messages(OWNER)
    action = next(b for b in message["blocks"] if b["type"] == "actions")

    def click(_):
        return bot.slack.click(bot.server.slack_url, OWNER, message["channel"], message["ts"], "token_revoke",
                               block_id=action["block_id"], as_shown=message).status

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert set(pool.map(click, range(20))) == {200}

    wait_for(lambda: len(revokes(bot)) == 20, timeout=30, what="20 recorded attempts")
    assert len(deletes(bot)) == 1
    assert [d.status for d in revokes(bot)].count("applied") == 1
    # The message is redrawn once, by the applied revoke; the 19 refused duplicates changed nothing.
    redrawn = wait_for(lambda: updates_of(bot, message), timeout=30, what="the reminder redrawn")
    refusals = [d.parameters.get("refused") for d in revokes(bot) if d.status == "refused"]
    assert refusals == ["duplicate"] * 19  # each recorded, however late it came
    assert len(redrawn) == 1 and "Revoked by" in str(redrawn[0]["args"])
    # The owner is told the revoke, and at most once more that it was under way: not 19 times.
    told = settled(lambda: len(bot.slack.ephemerals(OWNER)))
    assert 1 <= told <= 2, bot.slack.ephemerals(OWNER)


def settled(count, quiet: float = 2.0, timeout: float = 60.0) -> int:
    """`count()` once it has not changed for `quiet` seconds (the answers after the records)."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"the count never settled: {last}")


def updates_of(world, message):
    return [c for c in world.slack.calls("chat.update") if c["args"].get("ts") == message["ts"]]


def test_two_admins_revoking_at_once_make_one_delete(bot):
    [escalation] = bot.slack.messages(ADMIN_CHANNEL)
    action = next(b for b in escalation["blocks"] if b["type"] == "actions")

    def click(admin):
        return bot.slack.click(bot.server.slack_url, admin, ADMIN_CHANNEL, escalation["ts"], "token_revoke",
                               block_id=action["block_id"], as_shown=escalation).status

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(click, [ADMIN_USER, "U0ADMIN2"])) == [200, 200]

    wait_for(lambda: len(revokes(bot)) == 2, timeout=30, what="both attempts recorded")
    assert len(deletes(bot)) == 1
    statuses = sorted(d.status for d in revokes(bot))
    assert statuses == ["applied", "refused"]
