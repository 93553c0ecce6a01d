"""`tokenbot enforce [--dry-run] [--json]`: one enforcement pass, the hourly job's own, from the
command line; what it revoked, what it would revoke, and what held each other token back."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.databricks.gateway import gateway_factory
from bot.jobs.runners import JobContext, enforcement_job
from bot.models import Decision
from bot.slack.client import make_client
from tests.support.slack_helpers import ADMIN_CHANNEL
from tests.support.world import close_world, make_world

runner = CliRunner()


def policy_toml(per_run: int, enforce: bool) -> str:
    return (
        '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 365\nquiet_hours = "off"\n'
        f"enforce = {str(enforce).lower()}\nmax_revocations_per_run = {per_run}\n"
    )


@pytest.fixture
def world_factory(tmp_path, monkeypatch, database_url):
    """prod: two tokens idle for 70 days, and one over the 365-day lifetime but used yesterday."""
    made = []

    def make(per_run: int = 20, enforce: bool = True):
        world, stack = make_world(tmp_path, monkeypatch, database_url, policy=policy_toml(per_run, enforce))
        made.append((world, stack))
        prod = world.org["prod"]
        owner = prod.add_user(user_name="owen@example.com")
        for token_id, created, idle in (("idle-1", 200, 70), ("idle-2", 200, 75), ("busy-old", 400, 1)):
            prod.add_token(
                token_id=token_id,
                owner_id=owner,
                created_at=clock.now() - timedelta(days=created),
                expires_at=clock.now() + timedelta(days=100),
                last_used_at=clock.now() - timedelta(days=idle),
            )
        world.sync()
        return world

    yield make
    for world, stack in made:
        close_world(world, stack)


def deletes(world) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in world.org["prod"].requests if r.method == "DELETE")


def decision_count(world) -> int:
    with db.session_scope(world.engine) as session:
        return session.execute(select(func.count()).select_from(Decision)).scalar_one()


def test_dry_run_says_what_it_would_revoke_and_why_others_wait_and_changes_nothing(world_factory):
    world = world_factory()
    admin_before = len(world.slack.messages(ADMIN_CHANNEL))

    result = runner.invoke(app, ["enforce", "--dry-run", "--json"])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    results = {t["token_id"]: (t["result"], t["reason"]) for t in shown["tokens"]}
    assert results == {
        "idle-1": ("would_revoke", None),
        "idle-2": ("would_revoke", None),
        "busy-old": ("held", "recent_use"),
    }
    assert (shown["preview"], shown["held"], shown["stopped"]) == (True, {"recent_use": 1}, False)
    assert deletes(world) == [] and decision_count(world) == 0
    assert len(world.slack.messages(ADMIN_CHANNEL)) == admin_before


def test_enforce_revokes_and_lists_each_token_with_what_happened(world_factory):
    world = world_factory()

    result = runner.invoke(app, ["enforce"])

    assert result.exit_code == 0, result.output
    assert deletes(world) == ["idle-1", "idle-2"]
    assert "prod/idle-1 of owen@example.com" in result.output and ": revoked" in result.output
    assert "prod/busy-old" in result.output and "held (recent_use" in result.output
    assert "3 overdue, 2 revoked, 0 failed; held back: 1 recent_use." in result.output


def test_the_hourly_job_and_the_command_run_the_same_pass_and_share_the_breaker(world_factory):
    world = world_factory(per_run=1)
    settings = world.settings
    context = JobContext(
        settings=settings,
        engine=world.engine,
        client=make_client(settings),
        gateway_for=gateway_factory(settings.workspaces, settings.databricks),
    )

    enforcement_job(context)  # two due, one allowed per run: it trips the breaker
    result = runner.invoke(app, ["enforce"])

    assert result.exit_code == 1
    assert "Stopped: the breaker is tripped: 2 tokens are due at once" in result.output
    assert "held (breaker" in result.output and deletes(world) == []


def test_with_enforcement_off_the_pass_escalates_and_revokes_nothing(world_factory):
    world = world_factory(enforce=False)

    result = runner.invoke(app, ["enforce"])

    assert result.exit_code == 0, result.output
    assert "Enforcement off: 3 overdue, 3 escalated to the admins channel" in result.output
    assert deletes(world) == [] and "3 tokens need an admin" in world.slack.messages(ADMIN_CHANNEL)[-1]["text"]


def test_a_failed_revocation_exits_1(world_factory):
    world = world_factory()
    world.org["prod"].fail("DELETE", r"/api/2\.0/token-management/tokens/idle-1$", 500)

    result = runner.invoke(app, ["enforce"])

    assert result.exit_code == 1
    assert deletes(world) == ["idle-1", "idle-2"] and "1 failed" in result.output


def test_enforce_without_a_slack_token_is_a_usage_error(world_factory, monkeypatch):
    world = world_factory()
    monkeypatch.delenv("SLACK_BOT_TOKEN")

    result = runner.invoke(app, ["enforce", "--dry-run"])

    assert result.exit_code == 2 and "SLACK_BOT_TOKEN is not set" in result.output
    assert deletes(world) == []
