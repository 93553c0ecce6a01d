"""A `/tokens` answer reaches the person even when the command's response_url no longer takes
posts (Slack allows 5 within 30 minutes, then answers 404): it comes with chat.postEphemeral."""

from __future__ import annotations

import pytest

from tests.bot_server import running_bot, wait_for
from tests.command_helpers import OWNER, build_world


@pytest.fixture
def bot(tmp_path, monkeypatch, database_url):
    world, stack = build_world(tmp_path, monkeypatch, database_url)
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world
    world.engine.dispose()
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.mark.parametrize("limit", ["uses", "age"])
def test_an_answer_the_response_url_refuses_comes_as_an_ephemeral_message(bot, limit):
    if limit == "uses":
        bot.slack.response_url_uses = 0
    else:
        bot.slack.response_url_ttl = -1.0

    response = bot.slack.command(bot.server.slack_url, OWNER, "mine")

    assert response.status == 200
    answer = wait_for(
        lambda: [e for e in bot.slack.ephemerals(OWNER) if e["via"] == "chat.postEphemeral"],
        timeout=30,
        what="the answer",
    )[-1]
    assert "Your 3 Databricks tokens" in answer["blocks"][0]["text"]["text"]
    assert bot.slack.response_url_posts() == []
