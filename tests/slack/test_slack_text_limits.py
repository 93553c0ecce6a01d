"""Every text field tokenbot sends fits Slack's limit after escaping, cut before any entity or
mention: a token comment full of `&<>` cannot stop a modal or a message from reaching Slack."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.sandbox.slack import validate_blocks
from bot.services.ports import Recipient, ReminderItem, ReminderMessage
from bot.slack import blocks
from bot.slack.blocks import commands, home, modals
from bot.slack.blocks.answers import Page
from bot.slack.blocks.fit import fit
from tests.slack.test_blocks import NOW, view
from tests.support.bot_server import running_bot, wait_for
from tests.support.world import observed_token

OWNER = "U0OWEN"
NASTY = "Q&A <b>report</b> & <!channel> " * 60  # 1,920 characters (the column holds 2,000); 3,480 escaped
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def mrkdwn_texts(tree: Any) -> list[str]:
    """Every mrkdwn text in a block tree (plain_text is not escaped, so it is not checked here)."""
    if isinstance(tree, dict):
        found = [tree["text"]] if tree.get("type") == "mrkdwn" and isinstance(tree.get("text"), str) else []
        return found + [text for value in tree.values() for text in mrkdwn_texts(value)]
    if isinstance(tree, list):
        return [text for item in tree for text in mrkdwn_texts(item)]
    return []


def assert_escaped_and_whole(tree: Any) -> None:
    for text in mrkdwn_texts(tree):
        assert not BROKEN_ENTITY.search(text), text[-40:]
        assert "<!channel>" not in text


# the helper ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", range(1, 40))
def test_fit_never_cuts_inside_an_entity_or_a_mention(limit):
    text = "a&amp;b&lt;<@U0OWEN>&gt;c <#C0ADMINS> d&amp;"

    cut = fit(text, limit)

    assert len(cut) <= limit
    assert text.startswith(cut.removesuffix("…"))
    assert not re.search(r"&(?!amp;|lt;|gt;)", cut)
    assert cut.count("<") == cut.count(">")


def test_fit_keeps_text_that_fits():
    assert fit("a&amp;b", 7) == "a&amp;b"


# end to end ---------------------------------------------------------------------------------------


@pytest.fixture
def bot(world):
    world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen")
    prod = world.org["prod"]
    owner = prod.add_user(user_name="owen@example.com")
    observed_token(prod, owner, "tok-nasty", 5, comment=NASTY)
    world.sync()
    world.remind()
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world


def test_confirm_scopes_opens_for_a_token_with_a_long_comment_full_of_markup(bot):
    [reminder] = bot.slack.messages(OWNER)
    assert_escaped_and_whole(reminder["blocks"])
    actions = next(b for b in reminder["blocks"] if b["type"] == "actions")

    bot.slack.click(
        bot.server.slack_url,
        OWNER,
        reminder["channel"],
        reminder["ts"],
        "token_confirm_scopes",
        block_id=actions["block_id"],
    )

    modal = wait_for(lambda: bot.slack.views(OWNER, open_only=True), what="the modal")[-1]
    summary = modal["blocks"][0]["text"]["text"]
    assert "Q&amp;A &lt;b&gt;report&lt;/b&gt;" in summary and len(summary) <= 3000
    assert_escaped_and_whole(modal["blocks"])


# every builder ------------------------------------------------------------------------------------


def nasty_views(count: int = 3):
    return [view(index, comment=NASTY) for index in range(count)]


def builders():
    """(name, blocks) of every builder that shows a token's comment, one at a time."""
    views = nasty_views()
    items = [ReminderItem(f"r{v.pk}", v, v.evaluation.deadlines[0], "7") for v in views]
    recipient = Recipient("U1", tz="UTC")
    line = blocks.token_line("prod", views[0].token_id, NASTY)
    yield "reminder", blocks.reminder_message(ReminderMessage(recipient, tuple(items), NOW))[1]
    yield "approval", blocks.approval_request(blocks.escape(NASTY), line, "d1")[1]
    yield "owner wanted", blocks.owner_wanted(blocks.escape(NASTY), line, "t1")[1]
    yield "resolved", blocks.resolved(blocks.escape(NASTY) * 2, blocks.escape(NASTY))
    yield "outcome", blocks.outcome_blocks(blocks.escape(NASTY))
    yield "confirm scopes", modals.confirm_scopes(views[0], ["sql"], "{}").to_dict()["blocks"]
    yield "restore scopes", modals.restore_scopes(views[0], ["sql"], "{}").to_dict()["blocks"]
    page = Page(1, "x")
    yield "mine", commands.mine(items, {}, views, "UTC", NOW, page).blocks
    yield "show", commands.show(views[0], [], None, "UTC", NOW, page).blocks
    rows = [(v.evaluation.deadlines[0], v) for v in views]
    yield "upcoming", commands.upcoming(rows, 14, None, "UTC", NOW, page).blocks
    yield "home", home.home_view(home.HomeData("UTC", NOW, items, undated=views)).to_dict()["blocks"]


BUILDERS = ["reminder", "approval", "owner wanted", "resolved", "outcome", "confirm scopes",
            "restore scopes", "mine", "show", "upcoming", "home"]


@pytest.mark.parametrize("name", BUILDERS)
def test_every_builder_cuts_a_long_comment_full_of_markup_after_escaping(name):
    built = next(found for found_name, found in builders() if found_name == name)
    tree = [b if isinstance(b, dict) else b.to_dict() for b in built]  # slack_sdk checks its limits here

    assert validate_blocks(tree, limit=100) == []
    assert_escaped_and_whole(tree)
    assert "&amp;" in json.dumps(tree)
