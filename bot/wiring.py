"""The composition root: what talks to the outside world, built once per process and passed down.

`wire(settings, engine)` builds the Slack client and the Databricks gateway factory; the
`Wiring` it returns builds, on first use, what wraps them: the messenger, the Slack directory,
the digest poster, the enforcement notifier, Slack's clock, the readiness probe's client and the
bolt listeners' `Deps`. The CLI commands, `tokenbot serve` and the scheduled jobs (whose
`JobContext` is a `Wiring`) take these from here; services receive them as arguments and never
build them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from bot.config import Settings
from bot.databricks.gateway import gateway_factory
from bot.services import inventory
from bot.services.inventory import GatewayFactory
from bot.slack.client import SlackClient, SlackClock, make_client
from bot.slack.context import AdminCheck, Deps
from bot.slack.directory import SlackDirectory
from bot.slack.messenger import SlackMessenger
from bot.slack.notices import SlackDigestPoster, SlackEnforcementNotifier, digest_now

READINESS_TIMEOUT = 3  # seconds /readyz waits for Slack's auth.test


@dataclass(frozen=True)
class Wiring:
    settings: Settings
    engine: Engine
    client: SlackClient | None  # None when SLACK_BOT_TOKEN is not set (commands that need no Slack)
    gateway_for: GatewayFactory

    @cached_property
    def messenger(self) -> SlackMessenger:
        return SlackMessenger(self._slack())

    @cached_property
    def directory(self) -> SlackDirectory:
        """Owners looked up one by one (`users.lookupByEmail`), with the configured email domains."""
        return SlackDirectory(self._slack(), self.settings.slack.email_domains_map)

    @cached_property
    def digest_poster(self) -> SlackDigestPoster:
        return SlackDigestPoster(self._slack())

    @cached_property
    def enforcement_notifier(self) -> SlackEnforcementNotifier:
        return SlackEnforcementNotifier(self._slack())

    @cached_property
    def slack_clock(self) -> SlackClock:
        return SlackClock(self._slack())

    @cached_property
    def probe_client(self) -> SlackClient:
        """Its own client for readiness probes: a probe must answer within seconds, not wait out
        the retries of real work."""
        probe = make_client(self.settings, rate_limit_retries=0)
        probe.timeout, probe.retry_handlers = READINESS_TIMEOUT, []
        return probe

    @cached_property
    def deps(self) -> Deps:
        """What the bolt listeners need, the slash command's sync and digest included."""
        settings, engine, gateway_for = self.settings, self.engine, self.gateway_for

        def run_sync() -> list[inventory.SyncResult]:
            return inventory.sync_workspaces(
                engine=engine,
                workspaces=[(w.name, w.host) for w in settings.workspaces],
                gateway_for=gateway_for,
                policy=settings.policy,
                max_parallel=settings.databricks.max_parallel_workspaces,
            )

        client = self._slack()
        return Deps(
            settings=settings,
            engine=engine,
            gateway_for=gateway_for,
            is_admin=AdminCheck(client, settings.slack.admins, settings.slack.admin_group),
            run_sync=run_sync,
            post_digest=digest_now(settings, engine, client),
        )

    def _slack(self) -> SlackClient:
        if self.client is None:
            raise ValueError("SLACK_BOT_TOKEN is not set")
        return self.client


def wire(settings: Settings, engine: Engine) -> Wiring:
    """The Slack client (when SLACK_BOT_TOKEN is set) and the gateways of every configured workspace
    (each workspace's SDK client is built on first use and reused)."""
    return Wiring(
        settings=settings,
        engine=engine,
        client=make_client(settings) if settings.slack_bot_token is not None else None,
        gateway_for=gateway_factory(settings.workspaces, settings.databricks),
    )


def make_deps(settings: Settings, engine: Engine, client: SlackClient) -> Deps:
    """The bolt listeners' `Deps` over `client` (tests and the demo bring their own client)."""
    return Wiring(
        settings=settings,
        engine=engine,
        client=client,
        gateway_for=gateway_factory(settings.workspaces, settings.databricks),
    ).deps
