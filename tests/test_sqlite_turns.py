"""SQLite writers in one process take turns on a lock (bot/sqlite_turns.py): a waiting writer
wakes when the one before it commits, instead of sleeping on SQLite's busy-handler timer."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import text

from bot import db
from bot.sqlite_turns import TakingTurns, turn_for
from tests.support.bot_server import wait_for


@pytest.fixture
def path(tmp_path):
    database = tmp_path / "turns.db"
    with sqlite3.connect(database) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
    return database


def _connect(path, timeout: float = 30.0) -> TakingTurns:
    return sqlite3.connect(path, timeout=timeout, factory=TakingTurns, check_same_thread=False)


def test_a_writer_waits_for_the_turn_and_writes_once_the_first_commits(path):
    first, second = _connect(path), _connect(path)
    first.execute("INSERT INTO t VALUES (1)")  # holds the turn (and SQLite's lock) until commit
    assert turn_for(str(path)).locked()
    done = threading.Event()

    def write() -> None:
        second.execute("INSERT INTO t VALUES (2)")
        second.commit()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.5)  # blocked on the turn, not failing with "database is locked"
    first.commit()
    wait_for(done.is_set, what="the second writer", timeout=30)
    writer.join()
    assert sorted(n for (n,) in first.execute("SELECT n FROM t")) == [1, 2]
    assert not turn_for(str(path)).locked()


def test_a_reader_never_waits_for_a_writer(path):
    writer, reader = _connect(path), _connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("INSERT INTO t VALUES (1)")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)  # WAL: the last committed state
    writer.rollback()
    assert not turn_for(str(path)).locked()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close"])
def test_every_end_of_a_transaction_gives_the_turn_back(path, ending):
    connection = _connect(path)
    connection.execute("UPDATE t SET n = n")
    assert turn_for(str(path)).locked()
    getattr(connection, ending)()
    assert not turn_for(str(path)).locked()


def test_a_failed_write_keeps_the_turn_until_its_transaction_ends(path):
    connection = _connect(path)
    connection.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        connection.execute("INSERT INTO missing VALUES (1)")
    assert turn_for(str(path)).locked()  # the transaction (and the first insert) is still open
    connection.rollback()
    assert not turn_for(str(path)).locked()


def test_a_write_outside_a_transaction_gives_the_turn_back_at_once(path):
    connection = sqlite3.connect(path, factory=TakingTurns, isolation_level=None)
    connection.execute("INSERT INTO t VALUES (1)")  # autocommit: over when it ran
    assert not turn_for(str(path)).locked()


def test_the_engine_of_a_sqlite_file_takes_turns_and_an_in_memory_one_does_not(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path}/engine.db")
    with engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, TakingTurns)
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert turn_for(f"{tmp_path}/engine.db").locked()
        connection.commit()
        assert not turn_for(f"{tmp_path}/engine.db").locked()
    engine.dispose()
    memory = db.make_engine("sqlite://")
    with memory.connect() as connection:
        assert not isinstance(connection.connection.dbapi_connection, TakingTurns)
    memory.dispose()


def test_a_pooled_connection_returned_mid_transaction_gives_the_turn_back(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path}/pool.db")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    with db.session_scope(engine) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        assert turn_for(f"{tmp_path}/pool.db").locked()
    assert not turn_for(f"{tmp_path}/pool.db").locked()
    with pytest.raises(RuntimeError):
        with db.session_scope(engine) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            raise RuntimeError("the unit of work fails")
    assert not turn_for(f"{tmp_path}/pool.db").locked()
    engine.dispose()
