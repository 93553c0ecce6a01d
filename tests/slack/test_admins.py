"""Who is an admin: `slack.admins` plus the members of `slack.admin_group`, read through the real
slack_sdk client from the Slack sandbox. A failing group lookup fails closed (only `slack.admins`),
says so once in the logs and in /readyz, and the group is asked at most once per TTL."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from bot import db
from bot.models import Decision
from bot.slack.client import make_client
from bot.slack.context import ADMIN_GROUP_TTL, AdminCheck
from tests.cli.test_serve import serve  # noqa: F401  (the `tokenbot serve` subprocess fixture)
from tests.support.bot_server import running_bot, wait_for
from tests.support.slack_helpers import ADMIN_CHANNEL, ADMIN_USER, DIGEST_CHANNEL
from tests.support.world import close_world, make_world, observed_token

GROUP, MEMBER, OWNER = "S0ADMINS", "U0GROUPIE", "U0OWEN"
SLACK_TOML = f"""
[slack]
admins = ["{ADMIN_USER}"]
admin_group = "{GROUP}"
admin_channel = "{ADMIN_CHANNEL}"
digest_channel = "{DIGEST_CHANNEL}"
"""


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = make_world(tmp_path, monkeypatch, database_url, slack_toml=SLACK_TOML)
    world.slack.add_user(id=MEMBER, email="groupie@example.com", name="Gro Upie")
    world.slack.add_usergroup(id=GROUP, handle="tokenbot-admins", users=[MEMBER])
    yield world
    close_world(world, stack)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lookups(world) -> int:
    return len(world.slack.calls("usergroups.users.list"))


def admin_check(world, clock: Clock) -> AdminCheck:
    slack = world.settings.slack
    return AdminCheck(make_client(world.settings), slack.admins, slack.admin_group, monotonic=clock)


def test_group_members_are_admins_and_the_group_is_asked_once_per_ttl(world):
    clock = Clock()
    check = admin_check(world, clock)

    answers = [check(MEMBER) for _ in range(20)] + [check("U0NOBODY") for _ in range(20)]

    assert answers == [True] * 20 + [False] * 20
    assert lookups(world) == 1
    clock.now += ADMIN_GROUP_TTL
    assert check(MEMBER) and lookups(world) == 2


def test_a_removed_member_is_not_admin_once_the_lookup_fails(world, caplog):
    clock = Clock()
    check = admin_check(world, clock)
    assert check(MEMBER)
    world.slack.add_usergroup(id=GROUP, handle="tokenbot-admins", users=[])  # removed from the group
    world.slack.fail("usergroups.users.list", error="internal_error", times=1000)
    caplog.set_level(logging.INFO, logger="bot.slack.context")

    answers = []
    for _ in range(30):  # thirty days of clicks while Slack keeps failing
        clock.now += 86400
        answers += [check(MEMBER) for _ in range(5)]

    assert answers == [False] * 150
    assert check(ADMIN_USER)  # slack.admins still count: fail closed, not shut out
    assert lookups(world) == 1 + 30  # one call per TTL, not one per check
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "only slack.admins are admins" in warnings[0].getMessage()
    assert check.problem() == (
        "admin group lookup failing (internal_error): only slack.admins count as admins"
    )

    world.slack.clear_faults()
    world.slack.add_usergroup(id=GROUP, handle="tokenbot-admins", users=[MEMBER])
    clock.now += ADMIN_GROUP_TTL
    assert check(MEMBER) and check.problem() is None
    assert any("can be read again" in r.getMessage() for r in caplog.records)


def test_an_approval_click_by_a_group_member_is_refused_while_the_group_cannot_be_read(world):
    world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="owen@example.com"), "tok-observed", 5)
    world.sync()
    world.remind()
    world.slack.fail("usergroups.users.list", error="internal_error", times=1000)
    [message] = world.slack.messages(OWNER)
    reference = next(
        b["block_id"].removeprefix("token:") for b in message["blocks"] if b.get("block_id", "").startswith("token:")
    )
    with running_bot(world.settings, world.engine) as server:
        world.slack.click(
            server.slack_url, MEMBER, message["channel"], message["ts"], "token_revoke",
            block_id=f"actions:{reference}",
        )

        def decided():
            with db.session_scope(world.engine) as session:
                return session.execute(select(Decision)).scalars().all()

        [decision] = wait_for(decided, what="the refused decision")
    assert (decision.status, decision.actor_role, decision.parameters["refused"]) == ("refused", "other", "not_owner")
    assert [r for r in world.org["prod"].requests if r.method == "DELETE"] == []
    assert json.dumps(world.slack.messages(OWNER)[-1]).count("Revoked by") == 0


def test_readyz_says_the_admin_group_lookup_is_failing(world, serve):  # noqa: F811
    served = serve("--no-scheduler")
    assert served.get("/readyz") == (200, "ready")

    world.slack.fail("usergroups.users.list", error="missing_scope", times=1000)
    fresh = serve("--no-scheduler")  # a new process: its first lookup fails
    status, body = fresh.get("/readyz")

    assert status == 200
    assert body == "ready; admin group lookup failing (missing_scope): only slack.admins count as admins"
    wait_for(lambda: "only slack.admins are admins" in fresh.logs(), what="the warning")
    assert fresh.logs().count("cannot read admin group") == 1
