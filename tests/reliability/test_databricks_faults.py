"""Databricks misbehaving, one workspace at a time: rate limits, outages, slowness, dropped
connections and a rotated credential. A failed sync marks nothing gone, says what happened, and
the next run recovers; the other workspace is never affected."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import db
from bot.cli.main import app
from bot.models import Token, Workspace
from tests.support.workspaces import sandbox_org

runner = CliRunner()


@pytest.fixture
def org(tmp_path, monkeypatch, database_url):
    """Retries give up after 2 s, so a storm fails the sync quickly."""
    yield from _seeded_org(tmp_path, monkeypatch, database_url, retry_timeout_seconds=2)


@pytest.fixture
def patient_org(tmp_path, monkeypatch, database_url):
    """Retries go on for 30 s: room for Retry-After, the SDK's jitter and a busy machine."""
    yield from _seeded_org(tmp_path, monkeypatch, database_url, retry_timeout_seconds=30)


def _seeded_org(tmp_path, monkeypatch, database_url, retry_timeout_seconds):
    with sandbox_org(tmp_path, monkeypatch, database_url, retry_timeout_seconds=retry_timeout_seconds) as org:
        engine = db.make_engine(database_url)
        db.migrate(engine)
        org.engine = engine
        for name in ("prod", "dev"):
            sandbox = org[name]
            owner = sandbox.add_user(user_name=f"owner@{name}.example")
            for index in range(5):
                sandbox.add_token(token_id=f"{name}-{index}", owner_id=owner)
        assert runner.invoke(app, ["sync"]).exit_code == 0
        yield org
        engine.dispose()


def state(org) -> tuple[dict[str, str], int]:
    with db.session_scope(org.engine) as session:
        statuses = {w.name: w.status for w in session.execute(select(Workspace)).scalars()}
        live = len(session.execute(select(Token).where(Token.gone_at.is_(None))).all())
    return statuses, live


LIST = r"/api/2.0/token-management/tokens$"


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"status": 429, "retry_after": 1, "times": 100}, "overloaded or unavailable"),
        ({"status": 503, "times": 100}, "overloaded or unavailable"),
        ({"status": 0, "delay": 3.0, "times": 100}, "prod: FAILED"),  # slower than http_timeout_seconds
        ({"status": 0, "drop": True, "times": 100}, "prod: FAILED"),
        ({"status": 500, "times": 1}, "prod: FAILED"),
    ],
    ids=["429-storm", "503-storm", "timeout", "dropped", "500"],
)
def test_a_failing_workspace_keeps_its_tokens_and_recovers(org, fault, words):
    org["prod"].fail("GET", LIST, **fault)

    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 1
    assert words in result.output
    assert "dev: 5 tokens" in result.output
    statuses, live = state(org)
    assert statuses == {"prod": "stale", "dev": "ok"} and live == 10
    org["prod"].clear_faults()
    assert runner.invoke(app, ["sync"]).exit_code == 0
    assert state(org) == ({"prod": "ok", "dev": "ok"}, 10)


def test_a_brief_503_is_ridden_over(patient_org):
    org = patient_org
    org["prod"].fail("GET", LIST, 503, times=1, retry_after=1)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 0, result.output


def test_a_rotated_credential_is_a_clear_authentication_error(org, monkeypatch):
    monkeypatch.setenv("PROD_DATABRICKS_TOKEN", "dapi-rotated-away")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "prod: FAILED" in result.output and "authentication failed" in result.output
    assert "dapi-rotated-away" not in result.output
    assert state(org)[1] == 10
