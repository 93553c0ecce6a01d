"""Test helpers: a whole world of real parts (two Databricks workspaces, a Slack workspace,
tokenbot's database) and the fixture that builds it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import clock, db
from bot.config import Settings
from bot.databricks.gateway import gateway_factory
from bot.models import Notification
from bot.services import inventory, reminders
from bot.slack.client import make_client
from bot.slack.directory import SlackDirectory
from bot.slack.messenger import SlackMessenger
from tests.support.slack_helpers import SLACK_TOML, slack_workspace
from tests.support.workspaces import sandbox_org

RUNNING = "AUTOSCOPE_STATE_RUNNING"
POLICY = '[policy]\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'


class World:
    """Two Databricks workspaces, a Slack workspace, and tokenbot's database, all real."""

    def __init__(self, org, slack, engine):
        self.org, self.slack, self.engine = org, slack, engine

    @property
    def settings(self) -> Settings:
        return self.org.settings()

    def sync(self) -> None:
        settings = self.settings
        # The setup sync must succeed: on a loaded machine the sandbox's answers can outlast the
        # worlds' 3 s retry budget, which the faults the tests inject never need here.
        patient = settings.databricks.model_copy(update={"retry_timeout_seconds": 30, "http_timeout_seconds": 15})
        results = inventory.sync_workspaces(
            engine=self.engine,
            workspaces=[(w.name, w.host) for w in settings.workspaces],
            gateway_for=gateway_factory(settings.workspaces, patient),
            policy=settings.policy,
        )
        assert all(r.ok for r in results), results

    def remind(self, sender=None, now=None, dry_run=False):
        settings = self.settings
        client = make_client(settings)
        return reminders.run(
            engine=self.engine,
            policy=settings.policy,
            directory=SlackDirectory(client),
            sender=sender or SlackMessenger(client),
            admin_channel=settings.slack.admin_channel,
            now=now or clock.now(),
            dry_run=dry_run,
        )

    def notifications(self) -> list[Notification]:
        with db.session_scope(self.engine) as session:
            return list(session.execute(select(Notification).order_by(Notification.id)).scalars())


def make_world(tmp_path, monkeypatch, database_url, policy=POLICY, slack_toml=SLACK_TOML):
    stack = []
    org_cm = sandbox_org(tmp_path, monkeypatch, database_url, extra_toml=slack_toml + policy)
    org = org_cm.__enter__()
    stack.append(org_cm)
    slack_cm = slack_workspace(monkeypatch)
    slack = slack_cm.__enter__()
    stack.append(slack_cm)
    engine = db.make_engine(database_url)
    db.migrate(engine)
    return World(org, slack, engine), stack


def close_world(world: World, stack: list) -> None:
    """Stop what `make_world` started: the engine, then the sandboxes, last started first."""
    world.engine.dispose()
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = make_world(tmp_path, monkeypatch, database_url)
    yield world
    close_world(world, stack)


def observed_token(sandbox, owner, token_id, days_left, **extra):
    """A token in auto-scoping observation whose enforcement is `days_left` days away."""
    return sandbox.add_token(
        token_id=token_id,
        owner_id=owner,
        comment=extra.pop("comment", f"job {token_id}"),
        created_at=clock.now() - timedelta(days=30 - days_left),
        last_used_at=clock.now(),
        scopes=["all-apis"],
        inferred_scopes=["sql"],
        autoscope_state=RUNNING,
        expires_at=clock.now() + timedelta(days=365),
        **extra,
    )
