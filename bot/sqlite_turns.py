"""Writers to one SQLite file in this process take turns on a lock, rather than through SQLite's
busy handler.

SQLite lets one writer at a time hold the database. The others retry on a timer: its busy handler
sleeps 1, 2, 5, 10 ... up to 100 ms between attempts (sqliteDefaultBusyCallback in SQLite's
main.c), so under a burst of short write transactions (a click's claim, its record) a waiting
writer sleeps through many transactions that came and went, and the next one in hands the lock on
late. A burst of 2,000 clicks spent most of its time so. Here, before its first write, a
transaction takes this process's turn for the file (a lock that wakes the next writer the moment
the last one commits or rolls back); SQLite's own timeout still covers writers in other processes
(`tokenbot remind` from cron beside `serve`).

Wired in by `bot.db.make_engine` as the sqlite3 connection class (`sqlite3.connect(factory=...)`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Statements that never take SQLite's write lock; anything else is treated as a write.
_READS = ("SELECT", "PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK", "EXPLAIN", "BEGIN DEFERRED")

_turns: dict[str, threading.Lock] = {}
_turns_guard = threading.Lock()


def turn_for(database: str) -> threading.Lock:
    """The lock writers to `database` take turns on (one per file in the process)."""
    key = os.path.realpath(database)
    with _turns_guard:
        return _turns.setdefault(key, threading.Lock())


def _writes(statement: str) -> bool:
    return not statement.lstrip()[:16].upper().startswith(_READS)


class TakingTurns(sqlite3.Connection):
    """A sqlite3 connection whose writes wait for this process's turn on the file."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._turn = turn_for(str(database))
        self._patience = float(kwargs.get("timeout", 5.0))
        self._holding = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _TurnCursor)

    # sqlite3's own shortcuts run their statement in C, past the cursor's `execute`: through it here.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(sql, seq_of_parameters)

    def take_turn(self, statement: str) -> None:
        if self._holding or not _writes(statement):
            return
        # Past the timeout, go on without the turn: SQLite's own busy timeout then decides.
        self._holding = self._turn.acquire(timeout=self._patience)

    @contextmanager
    def statement(self, sql: str) -> Iterator[None]:
        """Around one statement: the turn first if it writes; given back at once if it wrote
        outside a transaction (autocommit), else when the transaction ends."""
        self.take_turn(sql)
        try:
            yield
        finally:
            if self._holding and not self.in_transaction:
                self._give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()

    def _give_back(self) -> None:
        if self._holding:
            self._holding = False
            self._turn.release()


class _TurnCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        with self.connection.statement(sql):  # type: ignore[attr-defined]
            return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        with self.connection.statement(sql):  # type: ignore[attr-defined]
            return super().executemany(sql, seq_of_parameters)
