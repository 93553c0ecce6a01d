"""What every Slack listener needs, built once in `cli.py` / `app.py` and passed in: settings,
the database, the Databricks gateways, and who counts as an admin."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot import clock
from bot.config import Settings
from bot.services.decisions import Actor
from bot.services.inventory import GatewayFactory, SyncResult
from bot.services.ports import SlackUser
from bot.slack.command_blocks import DigestNow
from bot.slack.directory import Identities

logger = logging.getLogger(__name__)

ADMIN_GROUP_TTL = 300.0  # seconds: membership changes reach tokenbot within five minutes


class AdminCheck:
    """Admins are the `slack.admins` user ids plus the members of `slack.admin_group`."""

    def __init__(
        self,
        client: WebClient,
        admins: list[str],
        group: str | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._admins = frozenset(admins)
        self._group = group
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None

    def __call__(self, user_id: str) -> bool:
        return user_id in self._admins or user_id in self._group_members()

    def _group_members(self) -> frozenset[str]:
        if not self._group:
            return frozenset()
        with self._lock:
            fresh = self._fetched_at is not None and self._monotonic() - self._fetched_at < ADMIN_GROUP_TTL
            if not fresh:
                try:
                    users = self._client.usergroups_users_list(usergroup=self._group)["users"]
                    self._members, self._fetched_at = frozenset(users), self._monotonic()
                except SlackApiError as error:
                    # Keep the last known members: a Slack hiccup must not make admins of nobody forever.
                    logger.error("cannot read admin group %s: %s", self._group, error.response.get("error"))
            return self._members


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    gateway_for: GatewayFactory
    is_admin: Callable[[str], bool]
    now: Callable[[], datetime] = field(default=clock.now)
    # Jobs the slash command can start; wired in `app.make_deps`.
    run_sync: Callable[[], list[SyncResult]] | None = None
    post_digest: Callable[[], DigestNow] | None = None  # posts the digest now; says what happened
    identities: Identities | None = None  # built from the settings when not given

    def __post_init__(self) -> None:
        if self.identities is None:
            self.identities = Identities(self.engine, self.settings.slack.email_domains_map, self.now)
        # SQLite has one write lock for the whole file, and a decision holds it across its
        # Databricks call: decisions taken side by side would queue in SQLite's busy timeout and
        # fail there under a burst of clicks. They queue here instead, in order, with no limit.
        # PostgreSQL locks just the token's row, so decisions on different tokens run together.
        self._decision_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None

    def one_decision_at_a_time(self) -> AbstractContextManager:
        return self._decision_lock if self._decision_lock is not None else nullcontext()

    def identify(self, client: WebClient, user_id: str) -> SlackUser | None:
        """Match the person to their Databricks principals by their Slack email (first use)."""
        return self.identities.identify(client, user_id)

    def tz_of(self, client: WebClient, user_id: str) -> str:
        return self.identities.tz(client, user_id)

    def actor(self, user_id: str) -> Actor:
        return Actor(slack_id=user_id, is_admin=self.is_admin(user_id))
