"""The database failing under a run: a locked SQLite file fails the run cleanly (a clear error,
nothing half-written) and the next one completes; a PostgreSQL connection dropped in the middle of
a decision, while Databricks is called, costs nothing: the decision holds no connection then, and
records its outcome on a fresh one."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlparse

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from bot import db
from bot.cli.main import app
from bot.databricks.gateway import gateway_factory
from bot.models import Decision, Token
from bot.services import decisions
from tests.conftest import POSTGRES_URL
from tests.support.workspaces import sandbox_org

runner = CliRunner()


def test_a_locked_sqlite_database_fails_the_sync_cleanly_and_the_next_one_completes(tmp_path, monkeypatch):
    path = tmp_path / "locked.db"
    with sandbox_org(tmp_path, monkeypatch, f"sqlite:///{path}?timeout=0.5", names=("prod",)) as org:
        prod = org["prod"]
        owner = prod.add_user(user_name="lou@example.com")
        prod.add_token(token_id="t1", owner_id=owner)
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        assert runner.invoke(app, ["sync"]).exit_code == 0
        prod.add_token(token_id="t2", owner_id=owner)
        holder = sqlite3.connect(path)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time

        locked = runner.invoke(app, ["sync"])

        holder.rollback()
        holder.close()
        assert locked.exit_code != 0
        assert "locked" in locked.output and "Traceback" not in locked.output
        after = runner.invoke(app, ["sync"])
        assert after.exit_code == 0 and "1 new" in after.output


@pytest.mark.skipif(not POSTGRES_URL, reason="TOKENBOT_TEST_DATABASE_URL is not set")
def test_a_postgresql_connection_dropped_during_the_databricks_call_still_records_the_decision(tmp_path, monkeypatch, database_url):
    if urlparse(database_url).scheme.startswith("sqlite"):
        pytest.skip("PostgreSQL only")
    with sandbox_org(tmp_path, monkeypatch, database_url, names=("prod",)) as org:
        prod = org["prod"]
        prod.add_token(token_id="t1", owner_id=prod.add_user(user_name="pat@example.com"))
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        assert runner.invoke(app, ["sync"]).exit_code == 0
        settings = org.settings()
        engine = db.make_engine(database_url)
        real = gateway_factory(settings.workspaces, settings.databricks)

        class DropsTheConnection:
            """Databricks answers, and meanwhile the database connection is killed."""

            def __init__(self, inner, pid):
                self.inner, self.pid = inner, pid

            def __getattr__(self, name):
                return getattr(self.inner, name)

            def delete_token(self, token_id):
                killer = db.make_engine(database_url)
                with killer.connect() as connection:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": self.pid})
                killer.dispose()
                return self.inner.delete_token(token_id)

        with db.session_scope(engine) as session:
            token_pk = session.execute(select(Token.id)).scalar_one()
        admin = decisions.Actor("U0ADMIN", is_admin=True)
        with db.session_scope(engine) as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            outcome = decisions.revoke(session=session, gateway_for=lambda name: DropsTheConnection(real(name), pid),
                                       actor=admin, token_pk=token_pk)

        assert outcome.status == "applied" and not outcome.already_gone
        with db.session_scope(engine) as session:
            [decision] = session.execute(select(Decision)).scalars().all()
            assert decision.status == "applied"
            assert session.get(Token, token_pk).gone_at is not None
        assert len([r for r in prod.requests if r.method == "DELETE"]) == 1
        engine.dispose()
