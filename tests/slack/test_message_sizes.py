"""At scale every message and view tokenbot sends fits what Slack accepts (the sandbox refuses
`msg_blocks_too_long`, `view_too_large` and `invalid_blocks` as Slack does), and what does not fit
says how much more there is and where to see it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from bot import clock
from bot.cli.main import app
from bot.sandbox.slack.limits import (
    MESSAGE_BLOCK_TEXT_LIMIT,
    VIEW_BLOCK_TEXT_LIMIT,
    block_text_size,
)
from tests.support.bot_server import running_bot, wait_for
from tests.support.command_helpers import Typist, action_values, everything
from tests.support.slack_helpers import ADMIN_CHANNEL, DIGEST_CHANNEL
from tests.support.world import close_world, make_world, observed_token

OWNER = "U0OWEN"
OWNER_TOKENS = 40
CROWD_TOKENS = 1000
LONG = ("Quarterly close & audit <finance> job, owned by the data platform team; " * 13)[:900]


@pytest.fixture
def crowd(tmp_path, monkeypatch, database_url):
    """Owen's 40 tokens, each with a 900-character comment, all due within two weeks; and 1,000
    tokens of someone Slack does not know, expiring over the next 13 days."""
    world, stack = make_world(tmp_path, monkeypatch, database_url)
    world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen")
    prod = world.org["prod"]
    owen = prod.add_user(user_name="owen@example.com")
    for index in range(OWNER_TOKENS):
        observed_token(prod, owen, f"owen-{index:03d}", 5 + index % 9, comment=f"{index} {LONG}")
    stranger = prod.add_user(user_name="stranger@example.com")
    now = clock.now()
    for index in range(CROWD_TOKENS):
        prod.add_token(
            token_id=f"crowd-{index:04d}",
            owner_id=stranger,
            comment=f"crowd {index} {LONG[:120]}",
            created_at=now - timedelta(days=20),
            expires_at=now + timedelta(days=1 + index % 13, hours=1),
            last_used_at=now,
            scopes=["sql"],
        )
    world.sync()
    yield world
    close_world(world, stack)


def more_count(text: str, pattern: str) -> int:
    """The number the first match of `pattern` says."""
    return int(re.findall(pattern, text)[0])


def test_an_owner_with_40_long_tokens_gets_one_dm_that_fits_and_points_to_the_rest(crowd):
    crowd.remind()

    [dm] = crowd.slack.messages(OWNER)
    shown = [b for b in dm["blocks"] if b.get("block_id", "").startswith("token:")]
    rest = more_count(everything(dm), r"…and (\d+) more tokens due")
    assert block_text_size(dm["blocks"]) <= MESSAGE_BLOCK_TEXT_LIMIT
    assert len(shown) + rest == OWNER_TOKENS and rest > 0
    assert "`/tokens mine` or open tokenbot's App Home" in everything(dm)


def test_the_admins_reminder_of_1000_tokens_comes_in_messages_that_fit_and_show_every_one(crowd):
    crowd.remind()

    messages = crowd.slack.messages(ADMIN_CHANNEL)
    shown = [b for m in messages for b in m["blocks"] if b.get("block_id", "").startswith("token:")]
    assert len(shown) == len({b["block_id"] for b in shown}) == CROWD_TOKENS  # each once
    for message in messages:
        assert block_text_size(message["blocks"]) <= MESSAGE_BLOCK_TEXT_LIMIT
    assert all("more tokens follow in the next message" in everything(m) for m in messages[:-1])
    assert "follow in the next message" not in everything(messages[-1])
    assert {n.status for n in crowd.notifications() if n.recipient == ADMIN_CHANNEL} == {"sent"}


def test_the_digest_of_1000_deadlines_fits_one_message_and_counts_the_rest(crowd):
    result = CliRunner().invoke(app, ["digest"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    [message] = [m for m in crowd.slack.messages(DIGEST_CHANNEL) if m.get("blocks")]
    text = everything(message)
    total = more_count(text, r"(\d+) deadlines in the next 14 days")
    shown = sum(int(n) for n in re.findall(r"\* · (\d+) deadlines?", text))
    hidden = more_count(text, r"…and (\d+) more deadlines on later days")
    assert total == CROWD_TOKENS + OWNER_TOKENS and shown + hidden == total and shown > 0
    assert "`/tokens upcoming` lists them all" in text
    assert block_text_size(message["blocks"]) <= MESSAGE_BLOCK_TEXT_LIMIT


def test_upcoming_comes_in_pages_that_each_fit_one_message(crowd):
    with running_bot(crowd.settings, crowd.engine) as server:
        crowd.server = server
        typist = Typist(crowd)
        first = typist.answer("upcoming 14")
        pages = [first]
        for _ in range(2):  # the next pages, as a reader clicks through them
            shown = typist.ephemeral("U0ADMIN")
            [value] = action_values(shown, "tokens_next_page")
            before = len(crowd.slack.response_url_posts())
            crowd.slack.click(
                server.slack_url, "U0ADMIN", shown["channel"], shown["ts"], "tokens_next_page", value
            )
            wait_for(lambda b=before: len(crowd.slack.response_url_posts()) > b, timeout=30, what="a page")
            pages.append(crowd.slack.response_url_posts()[-1]["body"])

    total_pages = more_count(everything(first), r"Page 1 of (\d+)")
    assert total_pages > 3
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {total_pages}" in everything(page)
        assert block_text_size(page["blocks"]) <= MESSAGE_BLOCK_TEXT_LIMIT and len(page["blocks"]) <= 50


def test_the_home_tab_of_an_owner_with_40_long_tokens_is_published_and_points_to_the_rest(crowd):
    crowd.remind()  # finds Owen in Slack
    with running_bot(crowd.settings, crowd.engine) as server:
        crowd.server = server
        response = crowd.slack.home_opened(server.slack_url, OWNER)
        assert response.status == 200
        home = wait_for(lambda: crowd.slack.views(OWNER), timeout=30, what="the Home tab")[-1]

    text = everything(home)
    shown = [b for b in home["blocks"] if b.get("block_id", "").startswith("token:")]
    assert len(shown) + more_count(text, r"And (\d+) more with a deadline") == OWNER_TOKENS
    assert "`/tokens mine`" in text
    assert block_text_size(home["blocks"]) <= VIEW_BLOCK_TEXT_LIMIT and len(home["blocks"]) <= 100
