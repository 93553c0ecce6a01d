"""Test helpers for the Slack sandbox's own tests: the people and channels of the standard
workspace, a throwaway endpoint that records what the driver sends, and the approval message
and scope modal the tests post, click and open."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.sandbox.server import Request, Response, SandboxServer
from bot.sandbox.slack import SlackSandbox

ALICE = "U0ALICE"
BOB_DELETED = "U0BOB"
OTHER_BOT = "U0OTHERBOT"
ADMIN_CHANNEL = "C0ADMIN"
FOREIGN_CHANNEL = "C0FOREIGN"


class Receiver:
    """A throwaway HTTP endpoint standing in for the bot: records what the driver sends."""

    def __init__(self) -> None:
        self.answer: Callable[[Request], Response] = lambda request: Response(200, b"")
        self.server = SandboxServer("receiver", lambda request: self.answer(request), lambda fault: {})

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/slack/events"

    @property
    def last(self) -> Request:
        return self.server.requests[-1]

    def last_payload(self) -> dict[str, Any]:
        return json.loads(parse_qs(self.last.body.decode())["payload"][0])


def approval_blocks() -> list[dict[str, Any]]:
    return [
        SectionBlock(text=MarkdownTextObject(text="Token *abc* expires soon")).to_dict(),
        ActionsBlock(
            block_id="token-actions",
            elements=[
                ButtonElement(text="Extend", action_id="extend", value="abc:30", style="primary"),
                ButtonElement(text="Revoke", action_id="revoke", value="abc", style="danger"),
            ],
        ).to_dict(),
    ]


def scope_modal(**overrides: Any) -> View:
    fields: dict[str, Any] = {
        "type": "modal",
        "callback_id": "scopes",
        "private_metadata": "token=abc",
        "title": "Choose scopes",
        "submit": "Save",
        "blocks": [
            InputBlock(
                block_id="scopes",
                label="Scopes",
                element=StaticMultiSelectElement(
                    action_id="pick",
                    placeholder="Pick",
                    options=[Option(value="sql", text="SQL"), Option(value="jobs", text="Jobs")],
                ),
            ),
            InputBlock(block_id="reason", label="Why", element=PlainTextInputElement(action_id="text")),
        ],
    }
    return View(**(fields | overrides))


def open_modal_from_click(slack: SlackSandbox, client: WebClient, receiver: Receiver) -> str:
    posted = client.chat_postMessage(channel=ALICE, text="Token abc", blocks=approval_blocks())
    slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "extend")
    trigger_id = receiver.last_payload()["trigger_id"]
    return client.views_open(trigger_id=trigger_id, view=scope_modal())["view"]["id"]
