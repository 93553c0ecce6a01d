"""Who uses a token, where the decision is made, through the real bot and the Slack sandbox: the
reminder's "Used by" and its Revoke confirmation, `/tokens show`, `/tokens revoke`; and a workspace
whose audit log is not read says so instead of guessing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot import clock
from bot.sandbox.databricks.audit_rows import USER_AGENTS, use
from tests.support.autoscope_helpers import EMAIL, OWNER, QUARTERLY, quarterly_world, refresh_audit
from tests.support.bot_server import running_bot
from tests.support.command_helpers import Typist, everything
from tests.support.world import close_world

DEV_TOKEN = "tok-dev-unread"


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url)
    now = clock.now()
    prod, dev = world.org["prod"], world.org["dev"]
    for hours, agent, ip in (
        (2, "power_bi", "20.190.5.10"),
        (30, "dbt", "10.1.2.3"),
        (24 * 40, "curl", "10.1.2.9"),
    ):
        prod.add_audit_rows(
            use(
                now - timedelta(hours=hours),
                QUARTERLY,
                EMAIL,
                "databrickssql",
                "executeStatement",
                agent=USER_AGENTS[agent],
                ip=ip,
            )
        )
    dev.add_token(
        token_id=DEV_TOKEN,
        owner_id=dev.add_user(user_name=EMAIL),
        comment="dev sandbox",
        created_at=now - timedelta(days=10),
        last_used_at=now,
        scopes=["sql"],
    )
    world.sync()
    assert all(r.ok for r in refresh_audit(world).values() if not r.skipped)
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world
    close_world(world, stack)


def test_the_reminder_says_who_uses_the_token_and_the_revoke_dialog_who_did_this_week(world):
    world.remind()

    [message] = world.slack.messages(OWNER)
    text = json.dumps(message["blocks"])
    assert "Used by:" in text and "*Power BI* from 20.190.5.0/24" in text and "*curl*" in text
    revoke = next(
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "token_revoke"
    )
    assert "Used in the last 7 days by: Power BI, dbt." in revoke["confirm"]["text"]["text"]


def test_tokens_show_lists_every_consumer(world):
    body = Typist(world).answer(f"show {QUARTERLY}")

    text = everything(body)
    assert "*Used by*" in text
    for client in ("Power BI", "dbt", "curl", "10.1.2.0/24"):
        assert client in text


def test_tokens_revoke_says_who_used_it_in_the_last_7_days(world):
    body = Typist(world).answer(f"revoke {QUARTERLY} leaked in a notebook")

    assert everything(body).count("Used in the last 7 days by: Power BI, dbt.") == 2


def test_a_workspace_whose_audit_log_is_not_read_says_usage_data_unavailable(world):
    body = Typist(world).answer(f"revoke {DEV_TOKEN} unused")

    text = everything(body)
    assert "Usage data unavailable (the audit log is not read for this workspace)." in text
    assert "No use seen" not in text
