"""The lease that gives each run of a scheduled job to one replica, and the SQLite scheduler lock.

Per run (`JobLease`):
- PostgreSQL: `pg_try_advisory_lock` on a dedicated connection for the length of the run, released
  after (a crash drops the connection, and the lock with it): two replicas never run one job at once.
  Advisory locks are per database, so the key names the schema too: two deployments in separate
  schemas of one database never wait for each other.
- Both databases: the job's `jobrun` row is claimed with one conditional UPDATE, which succeeds only
  if nobody started the job within the last half period. Interval triggers are aligned to a fixed
  epoch, so every replica fires at the same instants; the first to claim runs, the others skip. So a
  job runs once per period across replicas, even when one finishes before another fires.
- SQLite: one process is assumed. `serve` holds an exclusive `flock` on `<db file>.scheduler.lock`
  for its lifetime (`hold_scheduler_lock`); a second `serve` on the same file refuses to start its
  scheduler with a message that says why.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot import clock, db
from bot.models import JobRun

logger = logging.getLogger(__name__)


def lock_key(job: str, schema: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`, one per job and schema."""
    digest_ = hashlib.blake2b(f"tokenbot:{schema}:{job}".encode(), digest_size=8).digest()
    return int.from_bytes(digest_, "big", signed=True)


@dataclass
class Held:
    job: str
    started_at: datetime
    connection: Connection | None  # PostgreSQL: the connection holding the advisory lock
    key: int | None = None  # ... and the lock's key


class JobLease:
    """Who runs a job now: see the module docstring."""

    def __init__(self, engine: Engine, runner: str, now: Callable[[], datetime] = clock.now) -> None:
        self._engine = engine
        self._runner = runner[:200]
        self._now = now
        self._postgres = engine.dialect.name == "postgresql"

    def acquire(self, job: str, min_gap: timedelta) -> Held | str:
        """The lease for one run, or why this replica skips it."""
        connection = key = None
        if self._postgres:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                key = lock_key(job, connection.execute(text("SELECT current_schema()")).scalar() or "")
                locked = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
                if not locked.scalar():
                    connection.close()
                    return "another replica is running it"
            except Exception:
                connection.invalidate()
                raise
        now = self._now()
        try:
            last = self._claim(job, min_gap, now)
        except Exception:
            self._unlock(job, connection, key)
            raise
        if last is not None:
            self._unlock(job, connection, key)
            started_at, runner = last
            return f"{runner or 'another replica'} started it at {started_at:%H:%M:%S} UTC"
        return Held(job, now, connection, key)

    def release(self, held: Held, status: str, error: str | None = None) -> None:
        try:
            with db.session_scope(self._engine) as session:
                session.execute(
                    update(JobRun)
                    .where(
                        JobRun.job == held.job,
                        JobRun.runner == self._runner,
                        JobRun.started_at == held.started_at,
                    )
                    .values(finished_at=self._now(), status=status, error=(error or None) and error[:2000])
                )
        finally:
            self._unlock(held.job, held.connection, held.key)

    def _claim(self, job: str, min_gap: timedelta, now: datetime) -> tuple[datetime, str | None] | None:
        """None when this replica claimed the run; else when and by whom it was started."""
        with db.session_scope(self._engine) as session:
            if session.get(JobRun, job) is None:
                try:
                    with session.begin_nested():
                        session.add(JobRun(job=job))
                        session.flush()
                except IntegrityError:
                    pass  # another replica added it first
            claimed = session.execute(
                update(JobRun)
                .where(
                    JobRun.job == job,
                    or_(JobRun.started_at.is_(None), JobRun.started_at <= now - min_gap),
                )
                .values(started_at=now, finished_at=None, status="running", runner=self._runner, error=None)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:
                return None
            row = session.execute(select(JobRun.started_at, JobRun.runner).where(JobRun.job == job)).one()
            return row.started_at, row.runner

    def _unlock(self, job: str, connection: Connection | None, key: int | None) -> None:
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.close()
        except Exception:
            logger.exception("job %s: releasing its advisory lock failed; dropping the connection", job)
            connection.invalidate()  # the server releases a session's locks when it ends


class SchedulerLockError(Exception):
    """Another process runs the scheduler on this SQLite database."""


def hold_scheduler_lock(database_url: str) -> IO[str] | None:
    """SQLite: an exclusive lock on `<db file>.scheduler.lock`, held until the returned file is
    closed (at exit). None for PostgreSQL (the per-run lease does the work) and in-memory SQLite."""
    url = make_url(db.normalise_url(database_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    import fcntl

    path = Path(url.database).resolve()
    lock_path = path.with_name(path.name + ".scheduler.lock")
    handle = open(lock_path, "a+")  # held open for the life of the process
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise SchedulerLockError(
            f"another `tokenbot serve` (pid {holder}) already runs the scheduler on the SQLite database "
            f"{path}; SQLite allows one. Stop it, start this one with --no-scheduler, or use PostgreSQL "
            f"(TOKENBOT_DATABASE_URL) to run several replicas"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle

