"""One enforcement run against a test world, wired as `bot.jobs.runners.enforcement_pass` wires it."""

from __future__ import annotations

from datetime import datetime

from bot.services import enforcement
from bot.slack.client import SlackClock, make_client
from bot.slack.messenger import SlackMessenger
from bot.slack.notices import SlackEnforcementNotifier
from bot.wiring import make_deps


def run_enforcement(
    world, *, now: datetime, dry_run: bool = False, preview: bool = False
) -> enforcement.EnforcementSummary:
    settings = world.settings
    client = make_client(settings)
    return enforcement.run(
        engine=world.engine,
        gateway_for=make_deps(settings, world.engine, client).gateway_for,
        policy=settings.policy,
        notifier=SlackEnforcementNotifier(client),
        sender=SlackMessenger(client),
        admin_channel=settings.slack.admin_channel,
        now=now,
        slack_clock=SlackClock(client),
        dry_run=dry_run,
        preview=preview,
    )
