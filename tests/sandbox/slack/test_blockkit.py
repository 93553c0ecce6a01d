"""Block Kit checked as Slack checks it (blockkit.py): slack_sdk's model blocks pass, malformed
blocks are `invalid_blocks` and malformed views `invalid_arguments`, with Slack's messages."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
    StaticMultiSelectElement,
)

from bot.sandbox.slack import SlackSandbox
from tests.support.slack_sandbox import ADMIN_CHANNEL, ALICE, approval_blocks, scope_modal


def test_slack_sdk_model_blocks_are_accepted(slack: SlackSandbox, client: WebClient):
    blocks = [
        HeaderBlock(text="Tokens expiring"),
        DividerBlock(),
        SectionBlock(
            text=MarkdownTextObject(text="*abc*"), accessory=ButtonElement(text="Open", action_id="o")
        ),
        ContextBlock(elements=[MarkdownTextObject(text="workspace prod")]),
        InputBlock(
            label="Scopes",
            element=StaticMultiSelectElement(action_id="s", options=[Option(value="sql", text="SQL")]),
        ),
        *approval_blocks(),
    ]
    posted = client.chat_postMessage(channel=ADMIN_CHANNEL, text="fallback", blocks=blocks)

    stored = slack.messages(ADMIN_CHANNEL)[0]["blocks"]
    assert [b["type"] for b in stored] == [
        "header",
        "divider",
        "section",
        "context",
        "input",
        "section",
        "actions",
    ]
    assert all(b["block_id"] for b in stored)  # Slack fills in missing block ids
    assert posted["message"]["blocks"] == stored


def test_more_than_50_blocks_are_refused_with_invalid_blocks(client: WebClient):
    blocks = [DividerBlock() for _ in range(51)]
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=ADMIN_CHANNEL, text="too many", blocks=blocks)
    assert raised.value.response["error"] == "invalid_blocks"
    assert "no more than 50 items allowed [json-pointer:/blocks]" in raised.value.response["errors"]


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        ({"type": "carousel"}, "unsupported type: carousel"),
        (
            {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}},
            "must be less than 151 characters",
        ),
        ({"type": "header", "text": {"type": "mrkdwn", "text": "x"}}, "must be one of: plain_text"),
        ({"type": "section"}, "must provide one of: text, fields"),
        ({"type": "actions"}, "missing required field: elements"),
        (
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}],
            },
            "must be less than 76 characters",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": "s",
                        "options": [
                            {"text": {"type": "plain_text", "text": "o"}, "value": str(n)} for n in range(101)
                        ],
                    }
                ],
            },
            "no more than 100 items allowed",
        ),
        (
            {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
            "must be less than 3001 characters",
        ),
    ],
)
def test_malformed_blocks_are_refused(client: WebClient, block: dict[str, Any], complaint: str):
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=ADMIN_CHANNEL, text="x", blocks=[block])
    assert raised.value.response["error"] == "invalid_blocks"
    assert any(complaint in error for error in raised.value.response["errors"])


def test_views_are_validated_like_slack_does(slack, client, receiver):
    posted = client.chat_postMessage(channel=ALICE, text="t", blocks=approval_blocks())
    problems = {
        "must be less than 25 characters [json-pointer:/view/title/text]": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "x" * 25},
            "blocks": [],
        },
        "no more than 100 items allowed [json-pointer:/view/blocks]": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "x"},
            "blocks": [{"type": "divider"}] * 101,
        },
        "must define `submit` to use an `input` block in modals": scope_modal(submit=None).to_dict(),
    }
    for complaint, view in problems.items():
        slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "extend")
        with pytest.raises(SlackApiError) as raised:
            client.views_open(trigger_id=receiver.last_payload()["trigger_id"], view=view)
        assert raised.value.response["error"] == "invalid_arguments"
        assert any(complaint in m for m in raised.value.response["response_metadata"]["messages"]), complaint
