"""Databricks principal <-> Slack user: `users.list` (the whole directory, page by page),
`users.lookupByEmail` and `users.info`, with errors mapped; and `Identities`, which matches a
Slack user to their principals the first time they use tokenbot.

The durable cache lives on the `principal` row (see `bot/services/recipients.py`); this module
only asks Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot import clock
from bot.db import session_scope
from bot.services import recipients
from bot.services.ports import SlackUser

logger = logging.getLogger(__name__)

NOT_FOUND = {"users_not_found", "user_not_found"}
IDENTITY_TTL = 600.0  # seconds a Slack profile read on first use is reused (time zone, email)
# Seconds a clicker's match to their principals stands before a click matches them again: a burst
# of clicks by one person matches once. A principal a sync adds meanwhile is matched by the
# reminders' directory read, or by this person's next click after the minute.
LINK_TTL = 60.0


class SlackDirectory:
    def __init__(self, client: WebClient, domains_map: Mapping[str, str] | None = None) -> None:
        self._client = client
        self._domains_map = dict(domains_map or {})

    def lookup_email(self, email: str) -> SlackUser | None:
        """The active Slack user with this Databricks email, or at a domain mapped to its domain."""
        for candidate in recipients.slack_emails(email, self._domains_map):
            try:
                response = self._client.users_lookupByEmail(email=candidate)
            except SlackApiError as error:
                if error.response.get("error") in NOT_FOUND:
                    continue
                raise
            return _user(response["user"])
        return None

    def user_info(self, user_id: str) -> SlackUser | None:
        try:
            response = self._client.users_info(user=user_id)
        except SlackApiError as error:
            if error.response.get("error") in NOT_FOUND:
                return None
            raise
        return _user(response["user"])

    def all_users(self) -> Iterator[SlackUser]:
        """`users.list`, following `response_metadata.next_cursor` until it is empty (Slack's
        cursor pagination; 200 a page is the limit Slack recommends)."""
        cursor = None
        while True:
            response = self._client.users_list(limit=recipients.USERS_PER_PAGE, cursor=cursor)
            for member in response.get("members") or []:
                yield _user(member)
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return


def _user(data: dict[str, Any]) -> SlackUser:
    return SlackUser(
        id=data["id"],
        tz=data.get("tz") or "UTC",
        deleted=bool(data.get("deleted")),
        is_bot=bool(data.get("is_bot")) or data.get("id") == "USLACKBOT",
        email=(data.get("profile") or {}).get("email") or None,
    )


def refresh(
    engine: Engine, client: WebClient, domains_map: Mapping[str, str], now: datetime, *, always: bool = False
) -> recipients.DirectoryMatch | None:
    """Read the whole Slack directory and match every Databricks user at once, when that costs
    fewer calls than the lookups it saves (or `always`). None when it was not worth it."""
    with session_scope(engine) as session:
        if not always and not recipients.directory_worth_reading(session=session, now=now):
            return None
    users = list(SlackDirectory(client).all_users())  # read before the transaction: pages wait on Tier 2
    with session_scope(engine) as session:
        return recipients.match_directory(session=session, users=users, domains_map=domains_map, now=now)


class Identities:
    """Who a Slack user is: their profile (`users.info`), read on first use and for IDENTITY_TTL
    after, and their principals, matched by that profile's email (one query, again after LINK_TTL)."""

    def __init__(
        self,
        engine: Engine,
        domains_map: Mapping[str, str],
        now: Callable[[], datetime] = clock.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._domains_map = dict(domains_map)
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._profiles: dict[str, tuple[float, SlackUser]] = {}
        self._links: dict[str, tuple[float, str | None]] = {}  # user id: (when matched, by which email)

    def identify(self, client: WebClient, user_id: str) -> SlackUser | None:
        """The Slack user, now matched to their principals; None when Slack cannot say."""
        user = self._profile(client, user_id)
        if user is not None and not self._linked_lately(user):
            with session_scope(self._engine) as session:
                linked = recipients.link_slack_user(
                    session=session, user=user, domains_map=self._domains_map, now=self._now()
                )
                if linked:
                    logger.info("%s matched to %s principal(s) by email", user_id, len(linked))
            with self._lock:
                self._links[user_id] = (self._monotonic(), user.email)
        return user

    def _linked_lately(self, user: SlackUser) -> bool:
        with self._lock:
            linked = self._links.get(user.id)
        return linked is not None and linked[1] == user.email and self._monotonic() - linked[0] < LINK_TTL

    def tz(self, client: WebClient, user_id: str) -> str:
        """The reader's Slack time zone; UTC when Slack cannot say."""
        user = self._profile(client, user_id)
        return user.tz if user is not None else "UTC"

    def _profile(self, client: WebClient, user_id: str) -> SlackUser | None:
        with self._lock:
            cached = self._profiles.get(user_id)
            if cached is not None and self._monotonic() - cached[0] < IDENTITY_TTL:
                return cached[1]
        try:
            user = SlackDirectory(client).user_info(user_id)
        except SlackApiError as error:
            logger.info("no Slack profile for %s (%s)", user_id, error.response.get("error"))
            return None
        if user is not None:
            with self._lock:
                self._profiles[user_id] = (self._monotonic(), user)
        return user
