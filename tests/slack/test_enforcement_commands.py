"""`/tokens enforcement status|resume` (admins): the enforcement breaker seen and re-armed from
Slack, through the real bolt app; a resume is a decision row, and nobody else can do it."""

from __future__ import annotations

import pytest

from bot import clock, db
from bot.services import breaker
from tests.support.bot_server import running_bot
from tests.support.command_helpers import (
    ADMIN,
    EVE,
    Typist,
    build_world,
    databricks_mutations,
    decisions,
    everything,
)
from tests.support.world import close_world


@pytest.fixture
def bot(tmp_path, monkeypatch, database_url):
    world, stack = build_world(tmp_path, monkeypatch, database_url)
    server = running_bot(world.settings, world.engine)
    world.server = server.__enter__()
    yield Typist(world)
    server.__exit__(None, None, None)
    close_world(world, stack)


def trip(world, why: str = "30 tokens are due at once") -> None:
    with db.session_scope(world.engine) as session:
        breaker.trip(session=session, reason=why, would_revoke=[], now=clock.now(), dry_run=False)


def test_status_shows_an_armed_breaker_and_the_limits(bot):
    shown = everything(bot.answer("enforcement status"))

    assert "The enforcement breaker is armed" in shown
    assert "Revoked by enforcement in the last 24 hours: 0" in shown
    assert "20 per run, 50 per 24 hours" in shown and "used within 7 days" in shown


def test_status_shows_a_tripped_breaker_why_and_since_when(bot):
    trip(bot.world)

    shown = everything(bot.answer("enforcement status"))

    assert "The enforcement breaker is tripped (since " in shown
    assert "30 tokens are due at once" in shown and "/tokens enforcement resume" in shown


def test_an_admin_resumes_enforcement_and_it_is_recorded(bot):
    trip(bot.world)

    answer = everything(bot.answer("enforcement resume"))

    assert "Enforcement resumed: the breaker is armed again" in answer
    [row] = decisions(bot.world, breaker.RESUME)
    assert (row.actor_slack_id, row.actor_role, row.status, row.token_pk) == (ADMIN, "admin", "applied", None)
    assert row.parameters["tripped_because"] == "30 tokens are due at once"
    assert "re-armed by <@U0ADMIN>" in everything(bot.answer("enforcement status"))


def test_resuming_an_armed_breaker_says_so(bot):
    answer = everything(bot.answer("enforcement resume"))

    assert "not tripped: there is nothing to resume" in answer
    assert [d.status for d in decisions(bot.world, breaker.RESUME)] == ["refused"]


@pytest.mark.parametrize("words", ["enforcement resume", "enforcement status"])
def test_someone_else_is_refused_and_the_breaker_stays_tripped(bot, words):
    trip(bot.world)

    body = bot.answer(words, user=EVE)

    assert body["text"] == "Only tokenbot admins can use `/tokens enforcement`."
    assert decisions(bot.world, breaker.RESUME) == [] and databricks_mutations(bot.world) == []
    with db.session_scope(bot.world.engine) as session:
        assert breaker.state(session=session, now=clock.now()).tripped


@pytest.mark.parametrize("words", ["enforcement", "enforcement stop", "enforcement resume now"])
def test_anything_else_gets_the_usage(bot, words):
    shown = everything(bot.answer(words))

    assert "Say `status` or `resume`" in shown and "/tokens enforcement status|resume" in shown
    assert decisions(bot.world) == []
