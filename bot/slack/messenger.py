"""Posting and updating messages, with Slack's errors turned into `DeliveryError`s that say
what happened. Rate limits are waited out by the client's retry handler (`client.py`); when
Slack still says `ratelimited`, the caller leaves the rest for the next run."""

from __future__ import annotations

import logging
from dataclasses import replace

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.services.narrowing import NarrowedMessage
from bot.services.pacing import Addition
from bot.services.ports import Delivery, DeliveryError, ReminderMessage
from bot.slack import blocks
from bot.slack.blocks.escalations import admins_message, admins_parts
from bot.slack.blocks.narrowing import narrowed_message, narrowed_parts
from bot.slack.references import referenced, referenced_narrowed

logger = logging.getLogger(__name__)

RECIPIENT_GONE = {"user_disabled", "account_inactive", "user_not_found", "cannot_dm_bot", "user_not_visible"}
CANNOT_EDIT = {"message_not_found", "cant_update_message", "edit_window_closed"}  # chat.update's errors
NO_CHANNEL = {"channel_not_found", "not_in_channel", "is_archived"}


class SlackMessenger:
    """Sends reminders (and, later, any message) through the Web API."""

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def send(self, message: ReminderMessage) -> Delivery:
        message, shown = referenced(message), None
        if message.recipient.admins_channel:  # every token shown: the rest in the next message
            text, built, shown = admins_message(message)
        else:
            text, built = blocks.reminder_message(message)
        delivery = self.post(message.recipient.slack_id, text, [b.to_dict() for b in built])
        return replace(delivery, shown=shown)

    def add_to(self, addition: Addition) -> Delivery:
        """Redraw today's reminder DM with what is added to it; when Slack no longer lets tokenbot
        edit it (deleted, too old), post it as a new message instead."""
        text, built = blocks.reminder_message(referenced(addition.message))
        block_dicts = [b.to_dict() for b in built]
        try:
            self._client.chat_update(channel=addition.channel, ts=addition.ts, text=text, blocks=block_dicts)
        except SlackApiError as error:
            if error.response.get("error") not in CANNOT_EDIT:
                raise delivery_error(error, f"update {addition.channel}/{addition.ts}") from None
            return self.post(addition.message.recipient.slack_id, text, block_dicts)
        return Delivery(channel=addition.channel, ts=addition.ts)

    def preview(self, message: ReminderMessage) -> str:
        target = message.recipient.slack_id
        if message.recipient.admins_channel:  # as many messages as `send` would post
            parts = admins_parts(referenced(message))
            return "\n".join(f"=== admins channel {target} ===\n" + blocks.as_text(part) for part in parts)
        _, built = blocks.reminder_message(referenced(message))
        return f"=== DM to {target} ({message.recipient.tz}) ===\n" + blocks.as_text(built)

    # after auto-scoping narrowed a token (bot/services/narrowing.py)
    def send_narrowed(self, message: NarrowedMessage) -> Delivery:
        text, built, shown = narrowed_parts(referenced_narrowed(message), continued=True)
        delivery = self.post(message.recipient.slack_id, text, [b.to_dict() for b in built])
        return replace(delivery, shown=shown)  # what did not fit goes in the next message

    def preview_narrowed(self, message: NarrowedMessage) -> str:
        _, built = narrowed_message(referenced_narrowed(message))
        target = message.recipient.slack_id
        who = f"admins channel {target}" if message.recipient.admins_channel else f"DM to {target}"
        return f"=== {who} ({message.recipient.tz}) ===\n" + blocks.as_text(built)

    def post(self, channel: str, text: str, block_dicts: list[dict] | None = None) -> Delivery:
        try:
            response = self._client.chat_postMessage(channel=channel, text=text, blocks=block_dicts)
        except SlackApiError as error:
            raise delivery_error(error, f"post to {channel}") from None
        return Delivery(channel=response["channel"], ts=response["ts"])

    def update(self, channel: str, ts: str, text: str, block_dicts: list[dict] | None = None) -> None:
        try:
            self._client.chat_update(channel=channel, ts=ts, text=text, blocks=block_dicts)
        except SlackApiError as error:
            raise delivery_error(error, f"update {channel}/{ts}") from None


def delivery_error(error: SlackApiError, action: str) -> DeliveryError:
    code = error.response.get("error") or f"HTTP {error.response.status_code}"
    metrics.SLACK_ERRORS.labels(code).inc()
    if error.response.status_code == 429 or code == "ratelimited":
        retry_after = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
        return DeliveryError(
            "ratelimited",
            f"{action}: Slack rate limit ({code})",
            retry_after=float(retry_after) if retry_after else None,
        )
    if code in RECIPIENT_GONE:
        return DeliveryError(
            "recipient_gone", f"{action}: the Slack user is deactivated or unreachable ({code})"
        )
    if code in NO_CHANNEL:
        return DeliveryError("no_channel", f"{action}: {code}; invite the bot to the channel or fix its id")
    return DeliveryError("other", f"{action}: Slack answered {code}")
