"""A listing that suddenly shrinks is held: nothing marked gone, admins alerted, exit 1."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import db
from bot.cli.main import app
from bot.models import Token, Workspace
from tests.support.slack_helpers import ADMIN_CHANNEL, SLACK_TOML, slack_workspace
from tests.support.workspaces import sandbox_org

runner = CliRunner()


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
            prod.add_token(token_id=f"t{index}", owner_id=owner)
        assert runner.invoke(app, ["sync"]).exit_code == 0
        yield org
        engine.dispose()


def live_tokens(org) -> int:
    with db.session_scope(org.engine) as session:
        return len(session.execute(select(Token).where(Token.gone_at.is_(None))).all())


def test_an_empty_listing_after_a_permission_change_is_held(org):
    for index in range(10):
        org["prod"].revoke_token(f"t{index}")

    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 1
    assert "prod: HELD: the listing shrank from 10 to 0 tokens" in result.output
    assert "--accept-shrink prod" in result.output
    assert live_tokens(org) == 10
    with db.session_scope(org.engine) as session:
        assert session.get(Workspace, "prod").status == "held"
    [alert] = org.slack.messages(ADMIN_CHANNEL)
    assert "held" in alert["text"]


def test_an_admin_accepts_the_shrink(org):
    for index in range(6):
        org["prod"].revoke_token(f"t{index}")
    assert runner.invoke(app, ["sync"]).exit_code == 1

    result = runner.invoke(app, ["sync", "--accept-shrink", "prod"])

    assert result.exit_code == 0, result.output
    assert "6 gone" in result.output
    assert live_tokens(org) == 4


def test_ordinary_revocations_are_not_held(org):
    for index in range(2):
        org["prod"].revoke_token(f"t{index}")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 0 and "2 gone" in result.output
