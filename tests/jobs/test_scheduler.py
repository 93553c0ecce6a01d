"""The scheduler: which jobs run when, a failing run logged and counted and the next one run, and
the lease that gives each run to one replica (PostgreSQL advisory lock plus the `jobrun` row;
on SQLite, a file lock that keeps a second scheduler out)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, text

from bot import clock, db, metrics
from bot.jobs.lease import JobLease, SchedulerLockError, hold_scheduler_lock
from bot.jobs.runners import JobContext
from bot.jobs.scheduler import COMMANDS, Scheduler, min_gap
from bot.models import JobRun
from bot.wiring import wire
from tests.support.bot_server import wait_for
from tests.support.slack_helpers import DIGEST_CHANNEL
from tests.support.world import observed_token


def context_of(world) -> JobContext:
    return JobContext.over(wire(world.settings, world.engine))


def runs(job: str, status: str) -> float:
    return metrics.REGISTRY.get_sample_value("tokenbot_job_runs_total", {"job": job, "status": status}) or 0.0


def test_every_job_is_registered_once_with_its_schedule(world):
    scheduler = Scheduler(context_of(world))
    try:
        jobs = {job.id: job for job in scheduler.jobs}
        assert set(jobs) == {"sync", "reminders", "digest", "enforcement", "rotations", "usage_refresh"}
        for job in jobs.values():
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 300)
        assert jobs["sync"].trigger.interval == timedelta(minutes=60)  # policy.sync_interval_minutes
        assert jobs["reminders"].trigger.interval == timedelta(minutes=15)
        assert (
            jobs["enforcement"].trigger.interval == jobs["rotations"].trigger.interval == timedelta(hours=1)
        )
        assert jobs["usage_refresh"].trigger.interval == timedelta(days=1)
        assert isinstance(jobs["digest"].trigger, CronTrigger)
        assert str(jobs["digest"].trigger.timezone) == "UTC"
        assert "day_of_week='mon-fri'" in repr(jobs["digest"].trigger)
    finally:
        scheduler.close()


def test_every_scheduled_job_has_a_command_that_runs_it_once(world):
    from typer.testing import CliRunner

    from bot.cli.main import app

    scheduler = Scheduler(context_of(world))
    try:
        jobs = {job.id for job in scheduler.jobs}
    finally:
        scheduler.close()

    assert jobs <= set(COMMANDS)
    for job in jobs:
        result = CliRunner().invoke(app, [*COMMANDS[job].split(), "--help"])
        assert result.exit_code == 0, (job, result.output)


def test_no_digest_job_without_a_digest_channel(world):
    config = world.org.config_path
    config.write_text(config.read_text().replace('digest_channel = "C0DIGEST"\n', ""))
    scheduler = Scheduler(context_of(world))
    try:
        assert "digest" not in {job.id for job in scheduler.jobs}
    finally:
        scheduler.close()


def test_interval_jobs_fire_at_the_same_instants_on_every_replica():
    trigger = IntervalTrigger(minutes=15, start_date=datetime(2000, 1, 1, tzinfo=UTC), timezone=UTC)
    now = datetime(2026, 12, 7, 9, 7, 31, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 12, 7, 9, 15, tzinfo=UTC)
    assert min_gap(trigger, now) == timedelta(minutes=7, seconds=30)
    weekdays = CronTrigger.from_crontab("0 9 * * mon-fri", timezone=UTC)
    assert min_gap(weekdays, now) == timedelta(hours=12)


def test_a_failing_run_is_logged_and_counted_and_the_next_run_happens(world, caplog):
    world.slack.fail("chat.postMessage", error="internal_error")  # Slack breaks once
    failed_before, ok_before = runs("digest", "failed"), runs("digest", "ok")
    scheduler = Scheduler(context_of(world), intervals={"digest": timedelta(seconds=1)})
    caplog.set_level(logging.INFO, logger="bot.jobs")

    with scheduler.running():
        wait_for(lambda: world.slack.messages(DIGEST_CHANNEL), what="the digest of the next run")

    assert runs("digest", "failed") == failed_before + 1
    assert runs("digest", "ok") >= ok_before + 1
    assert "job digest failed; it runs again next time" in caplog.text
    assert (
        "DeliveryError: post to C0DIGEST: Slack answered internal_error" in caplog.text
    )  # with its traceback
    with db.session_scope(world.engine) as session:
        row = session.get(JobRun, "digest")
    assert row.status in ("ok", "running") and row.runner


# ---------------------------------------------------------------------------------------------
# the lease


def test_a_run_goes_to_one_replica_and_the_next_period_to_whoever_comes_first(engine):
    moment = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    alpha = JobLease(engine, "alpha:1", now=lambda: moment[0])
    beta = JobLease(engine, "beta:2", now=lambda: moment[0])
    gap = timedelta(minutes=7, seconds=30)

    held = alpha.acquire("reminders", gap)
    skipped = beta.acquire("reminders", gap)  # at the same instant, while alpha runs
    assert not isinstance(held, str) and isinstance(skipped, str)
    alpha.release(held, "ok")
    moment[0] += timedelta(seconds=2)
    late = beta.acquire("reminders", gap)  # alpha already ran this period
    assert late == "alpha:1 started it at 09:00:00 UTC"

    moment[0] += timedelta(minutes=15)  # the next period
    next_held = beta.acquire("reminders", gap)
    assert not isinstance(next_held, str)
    assert isinstance(alpha.acquire("reminders", gap), str)
    beta.release(next_held, "failed", "RuntimeError: boom")
    with db.session_scope(engine) as session:
        row = session.get(JobRun, "reminders")
    assert (row.runner, row.status, row.error) == ("beta:2", "failed", "RuntimeError: boom")
    other_job = alpha.acquire("sync", gap)  # each job has its own lease
    assert not isinstance(other_job, str)
    alpha.release(other_job, "ok")


def test_on_postgresql_a_run_that_outlasts_its_period_is_not_started_twice(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    moment = [clock.now()]
    alpha = JobLease(engine, "alpha:1", now=lambda: moment[0])
    beta = JobLease(engine, "beta:2", now=lambda: moment[0])

    held = alpha.acquire("sync", timedelta(seconds=1))
    moment[0] += timedelta(minutes=5)  # alpha's sync is still running five minutes later

    assert beta.acquire("sync", timedelta(seconds=1)) == "another replica is running it"
    alpha.release(held, "ok")
    after = beta.acquire("sync", timedelta(seconds=1))
    assert not isinstance(after, str)
    beta.release(after, "ok")  # a lock left held would stop every later sync in this database


def test_on_postgresql_deployments_in_other_schemas_do_not_share_a_lease(engine, request):
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    other_url = request.getfixturevalue("database_url").replace("search_path%3D", "search_path%3Dx", 1)
    # (a second schema of the same database: another tokenbot deployment, or another test)
    admin = db.make_engine(engine.url.set(query={}).render_as_string(hide_password=False))
    schema = other_url.rsplit("search_path%3D", 1)[1]
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.commit()
    other = db.make_engine(other_url)
    try:
        db.migrate(other)
        here = JobLease(engine, "here:1").acquire("sync", timedelta(0))
        there = JobLease(other, "there:1").acquire("sync", timedelta(0))
        assert not isinstance(here, str) and not isinstance(there, str), there
        JobLease(engine, "here:1").release(here, "ok")
        JobLease(other, "there:1").release(there, "ok")
    finally:
        other.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.commit()
        admin.dispose()


def test_a_second_scheduler_on_the_same_sqlite_file_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'tokenbot.db'}"
    first = hold_scheduler_lock(url)
    try:
        with pytest.raises(SchedulerLockError, match=r"already runs the scheduler on the SQLite database"):
            hold_scheduler_lock(url)
    finally:
        first.close()
    hold_scheduler_lock(url).close()  # free again once the first has gone
    assert hold_scheduler_lock("postgresql://db/tokenbot") is None  # PostgreSQL: the per-run lease


def test_the_jobrun_table_keeps_one_row_per_job(engine):
    lease = JobLease(engine, "solo:1")
    for _ in range(3):
        held = lease.acquire("digest", timedelta(0))
        lease.release(held, "ok")
    with db.session_scope(engine) as session:
        assert session.execute(select(JobRun.job)).scalars().all() == ["digest"]


def test_the_sync_job_alerts_the_admins_once_when_a_workspace_is_held(world):
    from bot.jobs.runners import sync_job
    from tests.support.slack_helpers import ADMIN_CHANNEL

    prod = world.org["prod"]
    owner = prod.add_user(user_name="someone@example.com")
    ids = [observed_token(prod, owner, f"t{n}", 20) for n in range(6)]
    context = context_of(world)
    sync_job(context)
    for token_id in ids[:5]:
        prod.revoke_token(token_id)  # most of the listing vanishes at once: the sync is held

    sync_job(context)
    sync_job(context)

    alerts = [m for m in world.slack.messages(ADMIN_CHANNEL) if "sync held" in m["text"]]
    assert len(alerts) == 1 and "*prod*" in alerts[0]["text"]
