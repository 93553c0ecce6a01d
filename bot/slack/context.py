"""What every Slack listener needs, built once in `bot/wiring.py` and passed in: settings,
the database, the Databricks gateways, and who counts as an admin."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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
from bot.slack.blocks.commands import DigestNow
from bot.slack.directory import Identities
from bot.slack.repeat_answers import RecentAnswers

logger = logging.getLogger(__name__)

# One answer about the admin group per process per five minutes, a failed lookup included: a check
# costs no Slack call in between, and a member removed from the group loses admin within that time.
ADMIN_GROUP_TTL = 300.0  # seconds


class AdminCheck:
    """Admins are the `slack.admins` user ids plus the members of `slack.admin_group`.

    Fails closed: while the group cannot be read (`usergroups.users.list` fails), only `slack.admins`
    count, never the members last seen (a member removed meanwhile would otherwise stay admin for as
    long as Slack fails). The failure is logged once when it starts and once when it ends, and
    `problem()` says so for /readyz."""

    def __init__(
        self,
        client: WebClient,
        admins: list[str],
        group: str | None,
        monotonic: Callable[[], float] = time.monotonic,
        ttl: float = ADMIN_GROUP_TTL,
    ) -> None:
        self._client = client
        self._admins = frozenset(admins)
        self._group = group
        self._monotonic = monotonic
        self._ttl = ttl
        self._lock = threading.Lock()
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._failure: str | None = None  # why the last lookup failed; None when it worked

    def __call__(self, user_id: str) -> bool:
        return user_id in self._admins or user_id in self._group_members()

    def problem(self) -> str | None:
        """What is wrong with the admin group lookup (asking Slack at most once per TTL), or None."""
        self._group_members()
        failure = self._failure
        if failure is None:
            return None
        return f"admin group lookup failing ({failure}): only slack.admins count as admins"

    def _group_members(self) -> frozenset[str]:
        if not self._group:
            return frozenset()
        with self._lock:
            fresh = self._fetched_at is not None and self._monotonic() - self._fetched_at < self._ttl
            if not fresh:
                self._members, failure = self._lookup()
                self._fetched_at = self._monotonic()
                self._log_change(failure)
                self._failure = failure
            return self._members

    def _lookup(self) -> tuple[frozenset[str], str | None]:
        try:
            return frozenset(self._client.usergroups_users_list(usergroup=self._group)["users"]), None
        except SlackApiError as error:
            return frozenset(), str(error.response.get("error") or f"HTTP {error.response.status_code}")
        except Exception as error:  # Slack unreachable: the same rule
            return frozenset(), type(error).__name__

    def _log_change(self, failure: str | None) -> None:
        if failure is not None and self._failure is None:
            logger.warning(
                "cannot read admin group %s (%s): until it can be read, only slack.admins are admins",
                self._group,
                failure,
            )
        elif failure is None and self._failure is not None:
            logger.info("admin group %s can be read again", self._group)


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    gateway_for: GatewayFactory
    is_admin: Callable[[str], bool]
    now: Callable[[], datetime] = field(default=clock.now)
    # Jobs the slash command can start; wired in `bot.wiring.make_deps`.
    run_sync: Callable[[], list[SyncResult]] | None = None
    post_digest: Callable[[], DigestNow] | None = None  # posts the digest now; says what happened
    identities: Identities | None = None  # built from the settings when not given
    answers: RecentAnswers = field(default_factory=RecentAnswers)  # whom a repeat need not tell again

    def __post_init__(self) -> None:
        if self.identities is None:
            self.identities = Identities(self.engine, self.settings.slack.email_domains_map, self.now)

    def identify(self, client: WebClient, user_id: str) -> SlackUser | None:
        """Match the person to their Databricks principals by their Slack email (first use)."""
        return self.identities.identify(client, user_id)

    def tz_of(self, client: WebClient, user_id: str) -> str:
        return self.identities.tz(client, user_id)

    def actor(self, user_id: str) -> Actor:
        return Actor(slack_id=user_id, is_admin=self.is_admin(user_id))
