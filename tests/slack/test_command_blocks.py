"""The builders of `/tokens` answers and of the App Home, called directly: pages stay within
Slack's limits, every token is on exactly one page, and user text never becomes markup."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.domain.deadlines import DeadlineKind
from bot.models import Workspace
from bot.sandbox.slack import validate_blocks, validate_view
from bot.sandbox.slack.limits import MESSAGE_BLOCK_TEXT_LIMIT, block_text_size
from bot.services.ports import ReminderItem
from bot.slack.blocks import answers, commands, home
from bot.slack.blocks.answers import Page
from tests.slack.test_blocks import NOW, view

HOSTILE = "<!channel> <@U999> <https://evil|click> & co"


def dumped(answer) -> str:
    return json.dumps(answer.payload()["blocks"])


def every_page(build):
    """The answers of page 1, 2, … as the pager buttons lead from one to the next."""
    pages, number = [], 1
    while True:
        answer = build(Page(number, "risky"))
        pages.append(answer)
        values = [
            e["value"]
            for b in answer.payload()["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "tokens_next_page"
        ]
        if not values:
            return pages
        number, command = answers.parse_pager_value(values[0])
        assert command == "risky"


@pytest.mark.parametrize("count", [1, 37, 380, 1000])
def test_a_long_list_comes_in_valid_pages_that_cover_every_token_once(count):
    views = [view(index, comment=f"tmp {index}") for index in range(count)]

    pages = every_page(lambda page: commands.risky(views, page))

    seen = []
    for answer in pages:
        built = answer.payload()["blocks"]
        assert len(built) <= answers.PAGE_BLOCKS
        assert validate_blocks(built) == []
        assert block_text_size(built) <= MESSAGE_BLOCK_TEXT_LIMIT
        seen += [int(n) for n in re.findall(r"tmp (\d+)", json.dumps(built))]
    assert (len(pages) == 1) == (count < 50)
    assert sorted(seen) == list(range(count))


def test_a_page_past_the_end_shows_the_last_one():
    views = [view(index) for index in range(400)]
    answer = commands.risky(views, Page(99, "risky"))
    [(number, total)] = re.findall(r"Page (\d+) of (\d+)", dumped(answer))
    assert number == total != "1"


def test_mine_pages_keep_each_token_with_its_buttons():
    views = [view(index, days_left=1 + index % 9) for index in range(30)]
    items = [ReminderItem(f"t{v.pk}", v, v.evaluation.deadlines[0], "command") for v in views]

    answer = commands.mine(items, {}, [], "UTC", NOW, Page(1, "mine"))

    built = answer.payload()["blocks"]
    assert len(built) <= answers.PAGE_BLOCKS and validate_blocks(built) == []
    sections = {
        b["block_id"].removeprefix("token:") for b in built if b.get("block_id", "").startswith("token:")
    }
    actions = {
        b["block_id"].removeprefix("actions:") for b in built if b.get("block_id", "").startswith("actions:")
    }
    assert sections == actions


def test_user_text_never_becomes_markup():
    hostile = view(1, comment=HOSTILE)
    deadline = hostile.evaluation.deadlines[0]
    built = [
        commands.risky([hostile], Page(1, "risky")),
        commands.stale([hostile], 1, NOW + timedelta(days=400), Page(1, "stale 1")),
        commands.upcoming([(deadline, hostile)], 14, "prod", "UTC", NOW, Page(1, "upcoming 14 prod")),
        commands.show(hostile, [], None, "UTC", NOW, Page(1, "show prod/x")),
        commands.revoke_confirmation(hostile, HOSTILE, "t1", NOW),
        answers.refusal(f"{answers.echo(HOSTILE)} is not a token id.", []),
        commands.outcome(f"<@U0ADA> now owns token x ({HOSTILE})"),
    ]
    for answer in built:
        rendered = answer.text + dumped(answer)
        assert "<!channel>" not in rendered and "<https://evil" not in rendered, rendered
    assert "<@U0ADA>" in dumped(built[-1])  # a service's own mention stays one


def test_the_admins_home_with_everything_at_once_stays_within_100_blocks():
    views = [view(index, days_left=1 + index % 9) for index in range(200)]
    items = [ReminderItem(f"t{v.pk}", v, v.evaluation.deadlines[0], "command") for v in views]
    workspaces = [
        Workspace(name=f"ws-{n:02d}", host="https://x", status="ok", last_sync_at=NOW) for n in range(50)
    ]
    workspaces[3].status, workspaces[3].last_error = "stale", HOSTILE
    waiting = [home.WaitingToken(v, f"t{v.pk}", "A service principal's token.") for v in views[:30]]
    overview = home.AdminOverview(
        {DeadlineKind.EXPIRY: 12, DeadlineKind.ORG_POLICY: 3}, 2, workspaces, waiting
    )

    built = home.home_view(home.HomeData("Europe/Paris", NOW, items, admin=overview)).to_dict()

    assert len(built["blocks"]) <= 100
    assert validate_view(built) == []
    text = json.dumps(built)
    assert "And 30 more workspaces" in text and "And 22 more waiting for an owner" in text
    assert "more with a deadline" in text and "<!channel>" not in text


@pytest.mark.parametrize("value", [None, "", "x risky", "²2 risky", "999999 risky", "-1 risky"])
def test_a_malformed_pager_value_is_page_one_of_nothing(value):
    assert answers.parse_pager_value(value) == (1, "")


def test_a_long_list_read_only_up_to_its_page_estimates_its_page_count():
    """`stale`, `risky`, `upcoming` read an estate only up to the page asked for (`more`): the count
    of pages is then about, and the next page is still offered."""
    from bot.slack.blocks import answers

    lines = [f"• token {n:05d} · unused" for n in range(401)]
    title = [answers._section("*100,000 tokens unused for 1 days or more*")]
    page = answers.Page(1, "stale 1")

    cut = answers.paged(title, answers.line_sections(lines), page, "100,000 stale tokens", more=(401, 99_599))
    whole = answers.paged(title, answers.line_sections(lines), page, "401 stale tokens")

    shown = str(cut.payload())
    assert "Page 1 of about " in shown and "'2 stale 1'" in shown
    assert "Page 1 of about" not in str(whole.payload()) and "Page 1 of " in str(whole.payload())
    pages = int(shown.split("Page 1 of about ")[1].split("'")[0].replace(",", ""))
    assert 250 <= pages <= 300  # 370 rows to a page (37 sections of 10 lines): 271 pages
