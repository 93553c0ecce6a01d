"""Databricks principal -> Slack user: `users.lookupByEmail` and `users.info`, with errors mapped.

The durable cache lives on the `principal` row (see `bot/services/recipients.py`); this class only
asks Slack.
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.ports import SlackUser

NOT_FOUND = {"users_not_found", "user_not_found"}


class SlackDirectory:
    def __init__(self, client: WebClient) -> None:
        self._client = client

    def lookup_email(self, email: str) -> SlackUser | None:
        try:
            response = self._client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            if error.response.get("error") in NOT_FOUND:
                return None
            raise
        return _user(response["user"])

    def user_info(self, user_id: str) -> SlackUser | None:
        try:
            response = self._client.users_info(user=user_id)
        except SlackApiError as error:
            if error.response.get("error") in NOT_FOUND:
                return None
            raise
        return _user(response["user"])


def _user(data: dict[str, Any]) -> SlackUser:
    return SlackUser(
        id=data["id"],
        tz=data.get("tz") or "UTC",
        deleted=bool(data.get("deleted")),
        is_bot=bool(data.get("is_bot")),
    )
