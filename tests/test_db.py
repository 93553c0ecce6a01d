"""The database layer on SQLite and PostgreSQL: migrations, transactions, portable types."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlmodel import SQLModel

from bot import db
from bot.models import Notification, Token, Workspace


def test_upgrade_creates_every_table_and_a_second_upgrade_is_a_no_op(database_url):
    engine = db.make_engine(database_url)
    assert db.migrate(engine)[-1] == db.head_revision()
    assert db.migrate(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert {
        "workspace",
        "principal",
        "token",
        "notification",
        "decision",
        "exemption",
        "event",
        "apiusage",
    } <= tables
    engine.dispose()


def test_models_and_migrations_agree(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_session_scope_commits_on_success_and_rolls_back_on_error(engine):
    with db.session_scope(engine) as session:
        session.add(Workspace(name="prod", host="https://prod"))
    with pytest.raises(RuntimeError), db.session_scope(engine) as session:
        session.add(Workspace(name="dev", host="https://dev"))
        session.flush()
        raise RuntimeError("half-way")
    with db.session_scope(engine) as session:
        assert session.exec(select(Workspace.name)).scalars().all() == ["prod"]


def test_times_come_back_aware_utc_and_lists_come_back_as_lists(engine):
    created = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with db.session_scope(engine) as session:
        session.add(Workspace(name="prod", host="https://prod"))
        session.flush()
        session.add(Token(workspace="prod", token_id="t1", created_at=created, scopes=["sql", "jobs"]))
    with db.session_scope(engine) as session:
        token = session.exec(select(Token)).scalars().one()
    assert token.created_at == created and token.created_at.tzinfo == UTC
    assert token.scopes == ["sql", "jobs"] and token.inferred_scopes == []


def test_naive_datetimes_are_refused(engine):
    with pytest.raises(Exception, match="naive datetime"), db.session_scope(engine) as session:
        session.add(Workspace(name="prod", host="https://prod", last_sync_at=datetime(2026, 1, 1)))
        session.flush()


def test_one_notification_per_token_deadline_step_and_recipient(engine):
    with db.session_scope(engine) as session:
        session.add(Workspace(name="prod", host="https://prod"))
        session.flush()
        token = Token(workspace="prod", token_id="t1")
        session.add(token)
        session.flush()
        token_pk = token.id
    row = dict(
        token_pk=token_pk, deadline_kind="expiry", due_date=date(2026, 12, 1), step="7", recipient="U1"
    )
    with db.session_scope(engine) as session:
        session.add(Notification(**row))
    with pytest.raises(Exception, match="(?i)unique"), db.session_scope(engine) as session:
        session.add(Notification(**row))


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg():
    assert db.normalise_url("postgresql://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert db.normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_every_listener_thread_gets_its_short_transactions_while_long_holders_keep_theirs(database_url):
    """The scheduler's threads and two admin commands hold connections throughout, while every
    Slack listener thread runs short transactions at once (a burst of clicks): none of them fails
    for want of a connection, and nobody waits for a long holder to finish."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier, Event

    from bot.slack.app import LISTENER_THREADS

    long_holders = 10 + 2  # APScheduler's default thread pool, and two estate scans
    assert db.POOL_SIZE + db.POOL_OVERFLOW >= long_holders + 10  # room for the clicks
    assert db.POOL_SIZE + db.POOL_OVERFLOW < 100  # PostgreSQL's default max_connections, for all replicas
    engine = db.make_engine(database_url)
    db.migrate(engine)
    holding, clicks_done = Barrier(long_holders + 1, timeout=120), Event()

    def hold(_: int) -> None:
        with db.session_scope(engine) as session:
            session.execute(select(text("1")))
            holding.wait()
            assert clicks_done.wait(300), "the clicks did not finish"

    def click(_: int) -> int:
        for _ in range(5):
            with db.session_scope(engine) as session:
                session.execute(select(text("1")))
        return 1

    with ThreadPoolExecutor(max_workers=long_holders) as holders:
        held = [holders.submit(hold, n) for n in range(long_holders)]
        holding.wait()  # every long holder has its connection
        try:
            with ThreadPoolExecutor(max_workers=LISTENER_THREADS) as pool:
                assert sum(pool.map(click, range(LISTENER_THREADS))) == LISTENER_THREADS
        finally:
            clicks_done.set()
        for future in held:
            future.result()
    engine.dispose()


def test_a_pool_with_no_free_connection_fails_with_a_clear_message(database_url):
    engine = db.make_engine(database_url, pool_size=1, overflow=0, timeout=0.5)
    db.migrate(engine)
    with db.session_scope(engine) as holding:
        holding.execute(select(text("1")))
        with pytest.raises(db.DatabaseBusy, match=r"no database connection came free within 0.5 s: all 1 \+ 0"):
            with db.session_scope(engine) as waiting:
                waiting.execute(select(text("1")))
    engine.dispose()


def test_every_listener_worker_can_call_databricks_without_dropping_a_connection():
    from bot.databricks.gateway import SDK_CONNECTIONS
    from bot.slack.app import LISTENER_THREADS

    assert SDK_CONNECTIONS >= LISTENER_THREADS
