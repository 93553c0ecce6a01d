"""Enforcement on bad data stops (DESIGN.md section 6): a wrong clock, too many tokens due at once
or in a day (the breaker, kept in the database), a token used recently, a listing that lost its
last-use days. Real sandboxes, a real database, the real SDK and Slack clients."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from bot import clock, db
from bot.databricks.gateway import gateway_factory
from bot.models import Decision, Token
from bot.services import breaker, decisions, enforcement
from bot.slack.client import SlackClock, make_client
from tests.support.enforcement_helpers import run_enforcement
from tests.support.slack_helpers import ADMIN_CHANNEL, ADMIN_USER
from tests.support.world import close_world, make_world

OWNER = "U0OWEN"
DAY = timedelta(days=1)
TOKENS_PATH = r"/api/2\.0/token-management/tokens$"


def policy_toml(*, per_run: int = 20, per_day: int = 50, lifetime: int = 0, min_idle: int = 7) -> str:
    return (
        '[policy]\norg_max_inactive_days = 60\nquiet_hours = "off"\nenforce = true\n'
        f"org_max_lifetime_days = {lifetime}\nmax_revocations_per_run = {per_run}\n"
        f"max_revocations_per_day = {per_day}\nenforce_min_idle_days = {min_idle}\n"
    )


@pytest.fixture
def world_factory(tmp_path, monkeypatch, database_url):
    made = []

    def make(**policy):
        world, stack = make_world(tmp_path, monkeypatch, database_url, policy=policy_toml(**policy))
        made.append((world, stack))
        world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen")
        world.owner = world.org["prod"].add_user(user_name="owen@example.com")
        return world

    yield make
    for world, stack in made:
        close_world(world, stack)


def add_tokens(world, count: int, *, idle_days: int, prefix: str = "t", created_days: int = 200) -> list[str]:
    prod = world.org["prod"]
    return [
        prod.add_token(
            token_id=f"{prefix}{index:02d}",
            owner_id=world.owner,
            comment=f"job {index}",
            created_at=clock.now() - timedelta(days=created_days),
            expires_at=clock.now() + timedelta(days=400),
            last_used_at=clock.now() - timedelta(days=idle_days),
            scopes=["sql"],
        )
        for index in range(count)
    ]


def enforce(world, *, now=None, preview: bool = False) -> enforcement.EnforcementSummary:
    return run_enforcement(world, now=now or clock.now(), preview=preview)


def deletes(world) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in world.org["prod"].requests if r.method == "DELETE"]


def admin_texts(world) -> list[str]:
    return [json.dumps(message) for message in world.slack.messages(ADMIN_CHANNEL)]


def breaker_state(world) -> breaker.BreakerState:
    with db.session_scope(world.engine) as session:
        return breaker.state(session=session, now=clock.now())


def real_now() -> datetime:
    return datetime.fromtimestamp(time.clock_gettime(time.CLOCK_REALTIME), UTC)


# the clock ------------------------------------------------------------------------------------


def test_the_sandboxes_answer_with_their_own_real_time_whatever_the_local_clock_says(world_factory):
    world = world_factory()
    settings = world.settings
    with freeze_time(real_now() + timedelta(days=365), tick=True):
        slack_time = SlackClock(make_client(settings)).server_time()
        databricks_time = gateway_factory(settings.workspaces, settings.databricks)("prod").server_time()
        local = clock.now()

    assert abs(slack_time - real_now()) < timedelta(minutes=1)
    assert abs(databricks_time - real_now()) < timedelta(minutes=1)
    assert local - databricks_time > timedelta(days=364)


def test_a_clock_a_year_ahead_revokes_nothing_and_alerts_the_admins(world_factory):
    # Used 10 to 50 days ago: none is overdue today; a year from now all of them are.
    world = world_factory(per_run=3)
    for index, idle in enumerate((10, 20, 30, 40, 50)):
        add_tokens(world, 8, idle_days=idle, prefix=f"g{index}-")

    with freeze_time(real_now() + timedelta(days=365), tick=True):  # the sync job runs on that clock too
        world.sync()
        summary = enforce(world)

    assert summary.overdue == 40 and summary.revoked == 0
    assert "the local clock is 365 days ahead of Slack's" in summary.clock_problem
    assert "ahead of Databricks (prod)'s" in summary.clock_problem
    assert summary.held == {"clock_skew": 40}
    assert deletes(world) == []
    assert not breaker_state(world).tripped  # a wrong clock is fixed by fixing the clock, not by an admin
    assert "the clock cannot be trusted" in admin_texts(world)[-1]


def test_a_clock_nobody_can_confirm_revokes_nothing(world_factory):
    world = world_factory()
    add_tokens(world, 2, idle_days=70)
    world.sync()
    world.slack.fail("auth.test", error="internal_error")

    summary = enforce(world)

    assert summary.revoked == 0 and "Slack could not be asked the time" in summary.clock_problem
    assert deletes(world) == []


def test_a_clock_a_minute_off_is_trusted(world_factory):
    world = world_factory()
    add_tokens(world, 2, idle_days=70)
    world.sync()

    with freeze_time(real_now() + timedelta(minutes=1), tick=True):
        summary = enforce(world)

    assert (summary.clock_problem, summary.revoked) == (None, 2)


# the breaker ----------------------------------------------------------------------------------


def test_the_breaker_trips_above_the_daily_limit_holds_across_runs_and_an_admin_resumes_it(world_factory):
    world = world_factory(per_day=6)
    add_tokens(world, 5, idle_days=70, prefix="first")
    world.sync()
    assert enforce(world).revoked == 5

    add_tokens(world, 3, idle_days=70, prefix="second")
    world.sync()
    tripped = enforce(world)

    assert (tripped.revoked, tripped.breaker_tripped) == (0, True)
    assert "3 tokens are due after 5 revoked in the last 24 hours" in tripped.breaker
    assert len(deletes(world)) == 5
    alert = admin_texts(world)[-1]
    assert "Enforcement breaker tripped: none of 3 due token(s) was revoked" in alert
    assert all(f"second{index:02d}" in alert for index in range(3))

    # Another run, through a new engine as another process would: still tripped, and quiet.
    alerts = len(admin_texts(world))
    world.engine.dispose()
    world.engine = db.make_engine(world.settings.database_url)
    held = enforce(world)
    assert (held.revoked, held.breaker_tripped, held.held) == (0, False, {"breaker": 3})
    assert len(admin_texts(world)) == alerts and len(deletes(world)) == 5

    with db.session_scope(world.engine) as session:
        refused = breaker.resume(session=session, actor=decisions.Actor(OWNER), now=clock.now())
        resumed = breaker.resume(session=session, actor=decisions.Actor(ADMIN_USER, True), now=clock.now())
    assert (refused.status, refused.reason, resumed.status) == ("refused", "not_admin", "applied")
    assert enforce(world).revoked == 3
    state = breaker_state(world)
    assert (state.tripped, state.revoked_last_day) == (False, 8)


def test_the_breaker_is_recorded_as_decisions(world_factory):
    world = world_factory(per_run=1)
    add_tokens(world, 2, idle_days=70)
    world.sync()

    enforce(world)

    with db.session_scope(world.engine) as session:
        [row] = session.execute(select(Decision).where(Decision.action == breaker.TRIP)).scalars()
        assert (row.token_pk, row.actor_slack_id, row.status) == (None, "tokenbot", "applied")
        assert [t["token_id"] for t in row.parameters["would_revoke"]] == ["t00", "t01"]
    assert "more than policy.max_revocations_per_run (1)" in breaker_state(world).why


def test_a_preview_trips_nothing_and_tells_nobody(world_factory):
    world = world_factory(per_run=1)
    add_tokens(world, 2, idle_days=70)
    world.sync()
    before = len(admin_texts(world))

    summary = enforce(world, preview=True)

    assert summary.breaker and not summary.breaker_tripped and not breaker_state(world).tripped
    assert len(admin_texts(world)) == before and deletes(world) == []


# stale data ---------------------------------------------------------------------------------


def test_a_workspace_not_synced_for_three_intervals_is_left_alone(world_factory):
    world = world_factory()
    add_tokens(world, 2, idle_days=70)
    with freeze_time(real_now() - timedelta(hours=4)):  # the last sync, four hourly syncs ago
        world.sync()

    summary = enforce(world)

    assert (summary.revoked, summary.held) == (0, {"stale_sync": 2})
    assert deletes(world) == []


# recent use -----------------------------------------------------------------------------------


def test_a_token_used_within_the_minimum_idle_days_is_never_revoked_whatever_the_rule(world_factory):
    world = world_factory(lifetime=365)
    prod = world.org["prod"]
    for token_id, idle in (("used-yesterday", 1), ("used-six-days-ago", 6), ("used-ten-days-ago", 10)):
        prod.add_token(
            token_id=token_id,
            owner_id=world.owner,
            created_at=clock.now() - timedelta(days=400),  # over the 365-day lifetime rule
            expires_at=clock.now() + timedelta(days=100),
            last_used_at=clock.now() - timedelta(days=idle),
        )
    world.sync()

    summary = enforce(world)

    assert deletes(world) == ["used-ten-days-ago"]
    held = {(t.token_id, t.reason) for t in summary.tokens if t.result == "held"}
    assert held == {("used-yesterday", "recent_use"), ("used-six-days-ago", "recent_use")}


def test_a_listing_that_dropped_last_use_does_not_make_used_tokens_revocable(world_factory):
    world = world_factory()
    prod = world.org["prod"]
    add_tokens(world, 2, idle_days=0, prefix="busy")  # used today, created 200 days ago
    world.sync()
    stripped = [{k: v for k, v in t.items() if k != "last_used_day"} for t in prod.tokens()]
    prod.fail("GET", TOKENS_PATH, 200, body={"token_infos": stripped})
    world.sync()  # two tokens: too few to hold the listing; the remembered last use stays

    summary = enforce(world)

    assert summary.overdue == 0 and deletes(world) == []
    with db.session_scope(world.engine) as session:
        used = session.execute(select(Token.last_used_on)).scalars().all()
    assert used and all(day is not None for day in used)
