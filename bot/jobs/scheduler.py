"""Which scheduled jobs run when (APScheduler 3, `BackgroundScheduler`) in `tokenbot serve`.

Jobs are plain functions of a `JobContext` (`bot/jobs/runners.py`), registered here with an
explicit id, `replace_existing=True`, `max_instances=1` and `coalesce=True` (STYLE.md 10):

- `sync`: every `policy.sync_interval_minutes`, and soon after start: the inventory sync;
- `reminders`: every 15 minutes: one reminder run (escalations included);
- `digest`: `slack.digest_cron` in `slack.digest_timezone`, when `slack.digest_channel` is set;
- `enforcement`: hourly: tokenbot's own policy (`bot/services/enforcement.py`);
- `rotations`: hourly: revoke the old token of rotations past their grace period;
- `usage_refresh`: daily: observed API usage from the audit log.

Each job also runs once from the command line (`COMMANDS`: `tokenbot rotations`, ...).

Every run goes through `run_job` under the lease of `bot/jobs/lease.py`, which gives it to one
replica: interval triggers are aligned to a fixed epoch so that every replica fires at the same
instants, and a replica skips a run another started within the last half period (`min_gap`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.jobs.lease import JobLease, hold_scheduler_lock
from bot.jobs.runners import (
    JobContext,
    digest_job,
    enforcement_job,
    reminders_job,
    rotations_job,
    run_job,
    sync_job,
    usage_job,
)
from bot.services import escalations

logger = logging.getLogger(__name__)

SYNC, REMINDERS, DIGEST, ENFORCEMENT, ROTATIONS = "sync", "reminders", "digest", "enforcement", "rotations"
USAGE = "usage_refresh"
# The command that runs each job once, for a deployment that runs the CLI from cron (or
# `serve --no-scheduler`): every job has one (tests/jobs/test_scheduler.py holds it).
COMMANDS = {
    SYNC: "sync",
    REMINDERS: "remind",
    DIGEST: "digest",
    ENFORCEMENT: "enforce",
    ROTATIONS: "rotations",
    USAGE: "usage refresh",
}
DAILY = timedelta(days=1)
REMINDER_INTERVAL = escalations.RUN_EVERY  # escalations are timed by it
HOURLY = timedelta(hours=1)
FIRST_SYNC_AFTER = timedelta(seconds=5)  # a new replica syncs soon after it starts
MISFIRE_GRACE_SECONDS = 300  # a run late by less than this (a busy pool, a paused VM) still happens
ALIGNED_TO = datetime(2000, 1, 1, tzinfo=UTC)  # interval jobs fire at the same instants on every replica


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
