"""Misuse findings in the admins channel (bot/services/misuse.py's `MisuseNotifier`)."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.services.misuse import MisuseNotice
from bot.services.ports import Delivery
from bot.slack.blocks.misuse import finding_message
from bot.slack.messenger import SlackMessenger


class SlackMisuseNotifier:
    def __init__(self, client: WebClient) -> None:
        self._messenger = SlackMessenger(client)

    def post_finding(self, channel: str, notice: MisuseNotice) -> Delivery:
        text, built = finding_message(notice)
        return self._messenger.post(channel, text, [block.to_dict() for block in built])

    def update_finding(self, channel: str, ts: str, notice: MisuseNotice) -> None:
        text, built = finding_message(notice)
        self._messenger.update(channel, ts, text, [block.to_dict() for block in built])
