"""Scheduled jobs (APScheduler 3, `BackgroundScheduler`) and the leader lease that keeps several
replicas from running the same job twice.

Jobs are plain functions of a `JobContext`, registered here with an explicit id,
`replace_existing=True`, `max_instances=1` and `coalesce=True` (STYLE.md 10):

- `sync`: every `policy.sync_interval_minutes`, and soon after start: the inventory sync;
- `reminders`: every 15 minutes: one reminder run (escalations included);
- `digest`: `slack.digest_cron` in `slack.digest_timezone`, when `slack.digest_channel` is set;
- `enforcement`: hourly: tokenbot's own policy (`bot/services/enforcement.py`);
- `rotations`: hourly: revoke the old token of rotations past their grace period.

`run_job` wraps every run: a failure is logged (`logger.exception`) and counted
(`tokenbot_job_runs_total{status="failed"}`), and the next run happens as planned.

The lease, per run (`JobLease`):
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
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from sqlalchemy import Connection, Engine, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot import clock, db, metrics
from bot.config import Settings
from bot.models import JobRun, Workspace
from bot.services import decisions, digest, enforcement, inventory, reminders
from bot.services.inventory import GatewayFactory

logger = logging.getLogger(__name__)

SYNC, REMINDERS, DIGEST, ENFORCEMENT, ROTATIONS = "sync", "reminders", "digest", "enforcement", "rotations"
USAGE = "usage_refresh"
DAILY = timedelta(days=1)
REMINDER_INTERVAL = timedelta(minutes=15)
HOURLY = timedelta(hours=1)
FIRST_SYNC_AFTER = timedelta(seconds=5)  # a new replica syncs soon after it starts
MISFIRE_GRACE_SECONDS = 300  # a run late by less than this (a busy pool, a paused VM) still happens
ALIGNED_TO = datetime(2000, 1, 1, tzinfo=UTC)  # interval jobs fire at the same instants on every replica


@dataclass(frozen=True)
class JobContext:
    """What the jobs need, built once by `tokenbot serve`."""

    settings: Settings
    engine: Engine
    client: WebClient
    gateway_for: GatewayFactory
    runner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    now: Callable[[], datetime] = clock.now


# =============================================================================================
# the jobs


def sync_job(context: JobContext) -> None:
    settings = context.settings
    with db.session_scope(context.engine) as session:
        before = dict(session.execute(select(Workspace.name, Workspace.status)).all())
    results = inventory.sync_workspaces(
        engine=context.engine,
        workspaces=[(w.name, w.host) for w in settings.workspaces],
        gateway_for=context.gateway_for,
        policy=settings.policy,
        max_parallel=settings.databricks.max_parallel_workspaces,
    )
    newly_held = []
    for result in results:
        held = bool(getattr(result, "held", False))
        metrics.SYNCS.labels(result.workspace, "ok" if result.ok else "held" if held else "failed").inc()
        if result.ok:
            logger.info(
                "sync %s: %s tokens, %s new, %s gone, %s changed",
                result.workspace,
                result.tokens,
                result.new,
                result.gone,
                result.changed,
            )
        else:
            logger.warning("sync %s failed: %s", result.workspace, result.error)
        if held and before.get(result.workspace) != "held":
            newly_held.append(result)
    if newly_held and settings.slack.admin_channel:
        from bot.services.ports import DeliveryError
        from bot.slack.messenger import SlackMessenger

        text_ = "\n".join(f":warning: tokenbot sync held *{r.workspace}*: {r.error}" for r in newly_held)
        try:
            SlackMessenger(context.client).post(settings.slack.admin_channel, text_)
        except DeliveryError as error:  # the sync itself went well
            logger.warning("could not tell the admins channel about a held sync: %s", error.message)
    if any(result.ok for result in results):
        directory_job(context)


def directory_job(context: JobContext) -> None:
    """After a sync: match the new Databricks users to Slack users with the whole directory at once
    (`users.list`), when that costs fewer calls than looking each one up in the reminder run."""
    from slack_sdk.errors import SlackApiError

    from bot.slack import directory

    try:
        found = directory.refresh(
            context.engine, context.client, context.settings.slack.email_domains_map, context.now()
        )
    except SlackApiError as error:  # the reminder run looks the owners up one by one instead
        logger.warning("could not read the Slack directory: %s", error.response.get("error"))
        return
    except Exception:  # the sync itself went well: do not count it as failed
        logger.exception("reading the Slack directory failed")
        return
    if found is not None:
        logger.info(
            "directory: %s Slack users read, %s owners matched, %s deactivated or bots, %s left to lookups",
            found.users,
            found.matched,
            found.unreachable,
            found.missed,
        )


def reminders_job(context: JobContext) -> None:
    from bot.slack.directory import SlackDirectory
    from bot.slack.messenger import SlackMessenger

    settings = context.settings
    summary = reminders.run(
        engine=context.engine,
        policy=settings.policy,
        directory=SlackDirectory(context.client, settings.slack.email_domains_map),
        sender=SlackMessenger(context.client),
        admin_channel=settings.slack.admin_channel,
        now=context.now(),
    )
    metrics.REMINDERS.inc(summary.sent_notifications)
    logger.info(
        "reminders: %s message(s) for %s reminder(s), %s escalation(s), %s failed, %s left pending",
        summary.sent_messages,
        summary.sent_notifications,
        summary.escalations,
        summary.failed,
        summary.left_pending,
    )


def digest_job(context: JobContext) -> None:
    from bot.slack.notices import SlackDigestPoster

    settings = context.settings
    if not settings.slack.digest_channel:
        return
    posted = digest.run(
        engine=context.engine,
        policy=settings.policy,
        poster=SlackDigestPoster(context.client),
        channel=settings.slack.digest_channel,
        now=context.now(),
        tz=settings.slack.digest_timezone,
        chart=settings.slack.digest_chart,
    )
    logger.info("digest posted to %s: %s", settings.slack.digest_channel, posted.summary())


def enforcement_pass(context: JobContext, *, preview: bool = False) -> enforcement.EnforcementSummary:
    """One enforcement pass, as the hourly job and `tokenbot enforce` both run it."""
    from bot.slack.client import SlackClock
    from bot.slack.messenger import SlackMessenger
    from bot.slack.notices import SlackEnforcementNotifier

    settings = context.settings
    return enforcement.run(
        engine=context.engine,
        gateway_for=context.gateway_for,
        policy=settings.policy,
        notifier=SlackEnforcementNotifier(context.client),
        sender=SlackMessenger(context.client),
        admin_channel=settings.slack.admin_channel,
        now=context.now(),
        slack_clock=SlackClock(context.client),
        dry_run=settings.dry_run,
        preview=preview,
    )


def enforcement_job(context: JobContext) -> None:
    summary = enforcement_pass(context)
    for action, status in summary.outcomes:
        metrics.DECISIONS.labels(action, status).inc()
    if summary.overdue:
        logger.info(
            "enforcement (%s): %s overdue, %s revoked, %s failed, %s escalated, held back: %s%s",
            "on" if context.settings.policy.enforce else "off",
            summary.overdue,
            summary.revoked,
            summary.failed,
            summary.escalated,
            ", ".join(f"{count} {reason}" for reason, count in sorted(summary.held.items())) or "none",
            f" (stopped: {summary.clock_problem or summary.breaker})" if summary.stopped else "",
        )


def usage_job(context: JobContext) -> None:
    """Observed API usage from the audit log (workspaces with `audit_warehouse_id`), daily."""
    from bot.services import usage

    results = usage.refresh_usage(
        engine=context.engine, settings=context.settings, gateway_for=context.gateway_for, now=context.now()
    )
    failed = [r for r in results if not r.ok]
    if failed:  # counted as a failed run; the other workspaces were refreshed
        raise RuntimeError("usage refresh failed for " + ", ".join(r.workspace for r in failed))


def rotations_job(context: JobContext) -> None:
    with db.session_scope(context.engine) as session:
        outcomes = decisions.complete_rotations(
            session=session,
            gateway_for=context.gateway_for,
            now=context.now(),
            dry_run=context.settings.dry_run,
        )
    for outcome in outcomes:
        metrics.DECISIONS.labels(outcome.action, outcome.status).inc()
    if outcomes:
        logger.info("rotations: %s old token(s) revoked after their grace period", len(outcomes))


# =============================================================================================
# the lease


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


# =============================================================================================
# running and registering


def run_job(
    job: str, function: Callable[[JobContext], None], context: JobContext, lease: JobLease, min_gap: timedelta
) -> str:
    """One run of a job under the lease; returns ok, failed or skipped. Never raises: a failure is
    logged and counted, and the scheduler runs the job again next time."""
    started = time.monotonic()
    try:
        held = lease.acquire(job, min_gap)
    except Exception:
        logger.exception("job %s: could not take its lease; it runs next time", job)
        metrics.JOB_RUNS.labels(job, "failed").inc()
        return "failed"
    if isinstance(held, str):
        logger.info("job %s skipped: %s", job, held)
        metrics.JOB_RUNS.labels(job, "skipped").inc()
        return "skipped"
    status, error = "ok", None
    try:
        function(context)
    except Exception as failure:
        status, error = "failed", f"{type(failure).__name__}: {failure}"
        logger.exception("job %s failed; it runs again next time", job)
    finally:
        try:
            lease.release(held, status, error)
        except Exception:
            logger.exception("job %s: recording its end failed", job)
    metrics.JOB_RUNS.labels(job, status).inc()
    logger.info("job %s %s in %.2f s", job, "done" if status == "ok" else status, time.monotonic() - started)
    return status


def every(period: timedelta) -> IntervalTrigger:
    """An interval trigger aligned to a fixed epoch: every replica fires at the same instants."""
    return IntervalTrigger(seconds=max(1, int(period.total_seconds())), start_date=ALIGNED_TO, timezone=UTC)


def min_gap(trigger: BaseTrigger, now: datetime) -> timedelta:
    """Half the trigger's shortest period: a replica skips a run started more recently than this."""
    if isinstance(trigger, IntervalTrigger):
        return trigger.interval / 2
    fires: list[datetime] = []
    previous = None
    moment = now
    for _ in range(12):
        moment = trigger.get_next_fire_time(previous, moment)
        if moment is None:
            break
        fires.append(moment)
        previous = moment
        moment = moment + timedelta(seconds=1)
    gaps = [later - earlier for earlier, later in zip(fires, fires[1:], strict=False)]
    return min(gaps) / 2 if gaps else timedelta(minutes=10)


def add_job(
    scheduler: BackgroundScheduler,
    context: JobContext,
    lease: JobLease,
    job: str,
    function: Callable[[JobContext], None],
    trigger: BaseTrigger,
    *,
    first_run: datetime | None = None,
) -> None:
    """Register `function` as job `job`, wrapped by `run_job` under the lease."""
    options: dict[str, Any] = {}
    if first_run is not None:
        options["next_run_time"] = first_run
    scheduler.add_job(
        run_job,
        trigger,
        args=(job, function, context, lease, min_gap(trigger, context.now())),
        id=job,
        name=job,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        **options,
    )


def register_jobs(
    scheduler: BackgroundScheduler,
    context: JobContext,
    lease: JobLease,
    intervals: Mapping[str, timedelta] | None = None,
) -> None:
    """Every job of `tokenbot serve`. `intervals` replaces a job's schedule by a plain interval
    (tests and trials: `serve --job-interval reminders=2`)."""
    intervals = dict(intervals or {})
    settings = context.settings

    def trigger(job: str, default: BaseTrigger) -> BaseTrigger:
        return every(intervals[job]) if job in intervals else default

    sync_every = timedelta(minutes=settings.policy.sync_interval_minutes)
    add_job(
        scheduler,
        context,
        lease,
        SYNC,
        sync_job,
        trigger(SYNC, every(sync_every)),
        first_run=None if SYNC in intervals else context.now() + FIRST_SYNC_AFTER,
    )
    add_job(scheduler, context, lease, REMINDERS, reminders_job, trigger(REMINDERS, every(REMINDER_INTERVAL)))
    if settings.slack.digest_channel:
        cron = CronTrigger.from_crontab(
            settings.slack.digest_cron, timezone=ZoneInfo(settings.slack.digest_timezone)
        )
        add_job(scheduler, context, lease, DIGEST, digest_job, trigger(DIGEST, cron))
    add_job(scheduler, context, lease, ENFORCEMENT, enforcement_job, trigger(ENFORCEMENT, every(HOURLY)))
    add_job(scheduler, context, lease, ROTATIONS, rotations_job, trigger(ROTATIONS, every(HOURLY)))
    register_extra_jobs(scheduler, context, lease, trigger)


def register_extra_jobs(
    scheduler: BackgroundScheduler,
    context: JobContext,
    lease: JobLease,
    trigger: Callable[[str, BaseTrigger], BaseTrigger],
) -> None:
    """Jobs of later features, one line each (`trigger` lets `serve --job-interval NAME=N` override
    a schedule)."""
    add_job(scheduler, context, lease, USAGE, usage_job, trigger(USAGE, every(DAILY)))


class Scheduler:
    """The scheduler of one `tokenbot serve` process."""

    def __init__(self, context: JobContext, intervals: Mapping[str, timedelta] | None = None) -> None:
        self._lock_file = hold_scheduler_lock(context.settings.database_url)  # SchedulerLockError
        self.lease = JobLease(context.engine, context.runner, context.now)
        self._scheduler = BackgroundScheduler(timezone=UTC)
        register_jobs(self._scheduler, context, self.lease, intervals)

    @property
    def jobs(self) -> list[Any]:
        return self._scheduler.get_jobs()

    def start(self) -> None:
        self._scheduler.start()
        for job in self._scheduler.get_jobs():
            logger.info("scheduled job %s: next run %s", job.id, job.next_run_time)

    def pause(self) -> None:
        """Stop taking work: no new run starts; the one in hand goes on."""
        if self._scheduler.running:
            self._scheduler.pause()

    def shutdown(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the job in hand; True when everything has stopped."""
        if not self._scheduler.running:
            return True
        self._scheduler.pause()
        stopper = threading.Thread(target=self._scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        stopper.start()
        stopper.join(timeout)
        return not stopper.is_alive()

    def close(self) -> None:
        """Stop (if started) and free the SQLite scheduler lock for another process."""
        self.shutdown(timeout=5)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @contextmanager
    def running(self) -> Iterator[Scheduler]:
        self.start()
        try:
            yield self
        finally:
            self.close()
