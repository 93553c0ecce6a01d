"""A listing in which many tokens lost a field they had at the last good sync (last use, every
scope, expiry) is held like a shrink: nothing written, the workspace `held`, admins alerted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.models import Token, Workspace
from tests.support.slack_helpers import ADMIN_CHANNEL, SLACK_TOML, slack_workspace
from tests.support.workspaces import sandbox_org

runner = CliRunner()
TOKENS_PATH = r"/api/2\.0/token-management/tokens$"
FIELDS = {"last_used_day": "last_used_on", "scopes": "scopes", "expiry_time": "expires_at"}


@pytest.fixture
def org(tmp_path, monkeypatch, database_url):
    with sandbox_org(tmp_path, monkeypatch, database_url, names=("prod",), extra_toml=SLACK_TOML) as org, \
            slack_workspace(monkeypatch) as slack:
        engine = db.make_engine(database_url)
        db.migrate(engine)
        org.engine, org.slack = engine, slack
        prod = org["prod"]
        owner = prod.add_user(user_name="ann@example.com")
        for index in range(10):
            prod.add_token(
                token_id=f"t{index}",
                owner_id=owner,
                last_used_at=clock.now() - timedelta(days=index),
                expires_at=clock.now() + timedelta(days=90),
                scopes=["sql"],
            )
        assert runner.invoke(app, ["sync"]).exit_code == 0
        yield org
        engine.dispose()


def serve_without(org, field: str, count: int) -> None:
    """The next listing drops `field` from the first `count` tokens."""
    listing = org["prod"].tokens()
    for info in listing[:count]:
        info.pop(field, None)
    org["prod"].fail("GET", TOKENS_PATH, 200, body={"token_infos": listing})


def column(org, name: str) -> list:
    with db.session_scope(org.engine) as session:
        return list(session.execute(select(getattr(Token, name)).order_by(Token.token_id)).scalars())


@pytest.mark.parametrize("field", list(FIELDS))
def test_a_listing_that_lost_a_field_on_many_tokens_is_held(org, field):
    before = column(org, FIELDS[field])
    serve_without(org, field, 6)

    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 1
    assert f"prod: HELD: the listing lost {field} on 6 of 10 tokens" in result.output
    assert column(org, FIELDS[field]) == before
    with db.session_scope(org.engine) as session:
        assert session.get(Workspace, "prod").status == "held"
    assert f"lost {field}" in org.slack.messages(ADMIN_CHANNEL)[-1]["text"]


def test_a_few_tokens_losing_a_field_is_ordinary_and_keeps_their_last_use(org):
    before = column(org, "last_used_on")
    serve_without(org, "last_used_day", 2)

    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 0, result.output
    assert column(org, "last_used_on") == before  # the best known last use is never forgotten


def test_a_later_last_use_still_replaces_the_remembered_one(org):
    org["prod"].mark_used("t9", clock.now())
    assert runner.invoke(app, ["sync"]).exit_code == 0
    assert column(org, "last_used_on")[-1].date() == clock.now().date()
