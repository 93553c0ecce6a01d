"""Database access: an engine from a URL, one transaction per unit of work, and migrations.

SQLite is the default (WAL, foreign keys on, a busy timeout so a reader never fails a writer, and
the process's writers taking turns on a lock: bot/sqlite_turns.py);
PostgreSQL is for production and several replicas. Services never commit: the caller's
`session_scope()` does. A decision uses two of them around its Databricks call, which holds no
transaction (claim, call, record: bot/services/decisions/ledger.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy.exc
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bot.sqlite_turns import TakingTurns

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
M = TypeVar("M")


def normalise_url(url: str) -> str:
    """Accept the plain `postgresql://` URLs people paste; we ship psycopg 3, not psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# Connections one process may hold at once. Some units of work hold theirs for seconds: the
# scheduler's thread pool (APScheduler's default: 10), an admin command reading the estate, a
# sync's parallel workspaces. The Slack listeners (bot/slack/app.py LISTENER_THREADS, about a
# hundred) hold one only for a short transaction at a time, never across a Databricks call, so
# they share what is left and wait milliseconds for it. PostgreSQL counts every connection of
# every replica against its max_connections, so the pool stays well under a hundred.
POOL_SIZE = 40
POOL_OVERFLOW = 20
POOL_TIMEOUT = 30  # seconds a unit of work waits for a free connection before failing


class DatabaseBusy(RuntimeError):
    """Every connection of the pool stayed in use for POOL_TIMEOUT seconds."""


def make_engine(
    url: str, *, pool_size: int = POOL_SIZE, overflow: int = POOL_OVERFLOW, timeout: float = POOL_TIMEOUT
) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": overflow, "pool_timeout": timeout}
    if parsed.get_backend_name() == "sqlite":
        # How long a writer waits for another's lock; `?timeout=N` in the URL overrides the 30 s.
        connect_args = {"check_same_thread": False}
        if "timeout" not in parsed.query:
            connect_args["timeout"] = 30
        if parsed.database in (None, "", ":memory:"):
            pool = {}  # an in-memory database is one connection (SQLAlchemy's own pool for it)
        elif "uri" not in parsed.query:
            connect_args["factory"] = TakingTurns  # this process's writers take turns (bot/sqlite_turns.py)
        engine = create_engine(url, connect_args=connect_args, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except sqlalchemy.exc.TimeoutError as error:
        session.rollback()
        raise DatabaseBusy(_busy_message(engine)) from error
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_or_add(session: Session, model: type[M], key: Any) -> M:
    """The row of `model` whose one-column primary key is `key`; a new one holding only its key,
    added to the session, when there is none."""
    row = session.get(model, key)
    if row is None:
        row = model(**{sqlalchemy.inspect(model).primary_key[0].name: key})
        session.add(row)
    return row


def _busy_message(engine: Engine) -> str:
    pool = engine.pool
    size = getattr(pool, "size", lambda: "?")()
    overflow = getattr(pool, "_max_overflow", "?")
    timeout = getattr(pool, "_timeout", POOL_TIMEOUT)
    return (
        f"no database connection came free within {timeout:g} s: all {size} + {overflow} overflow "
        "connections were in use, so this was not done. Something holds connections too long "
        "(the log says what ran). What this unit wrote to the database was rolled back."
    )


def _alembic_config(engine: Engine | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> list[str]:
    """Apply every pending migration; returns the revisions applied (empty when up to date)."""
    before = current_revision(engine)
    command.upgrade(_alembic_config(engine), "head")
    script = ScriptDirectory.from_config(_alembic_config())
    after = current_revision(engine)
    if before == after:
        return []
    return [rev.revision for rev in script.iterate_revisions(after, before)][::-1]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
