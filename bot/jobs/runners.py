"""The scheduled jobs themselves, and `run_job`, which wraps every run.

Jobs are plain functions of a `JobContext` (the process's `Wiring`: settings, engine, Slack client,
gateways and what wraps them), registered in `bot/jobs/scheduler.py`. `run_job` takes the run's
lease (`bot/jobs/lease.py`); a failure is logged (`logger.exception`) and counted
(`tokenbot_job_runs_total{status="failed"}`), and the next run happens as planned.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from bot import clock, db, metrics
from bot.jobs.lease import JobLease
from bot.models import Workspace
from bot.services import audit_read, decisions, digest, enforcement, inventory, misuse, reminders
from bot.services.decisions import rotation
from bot.services.ports import DeliveryError
from bot.slack import directory as slack_directory
from bot.slack.client import SlackError, error_code
from bot.slack.misuse import SlackMisuseNotifier
from bot.wiring import Wiring

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext(Wiring):
    """What the jobs need: the wiring `tokenbot serve` built once, who runs them, and the clock."""

    runner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    now: Callable[[], datetime] = clock.now

    @classmethod
    def over(cls, wiring: Wiring) -> JobContext:
        """The jobs' context over what `bot.wiring.wire` built."""
        return cls(
            settings=wiring.settings,
            engine=wiring.engine,
            client=wiring.client,
            gateway_for=wiring.gateway_for,
        )


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
        text_ = "\n".join(f":warning: tokenbot sync held *{r.workspace}*: {r.error}" for r in newly_held)
        try:
            context.messenger.post(settings.slack.admin_channel, text_)
        except DeliveryError as error:  # the sync itself went well
            logger.warning("could not tell the admins channel about a held sync: %s", error.message)
    if any(result.ok for result in results):
        directory_job(context)


def directory_job(context: JobContext) -> None:
    """After a sync: match the new Databricks users to Slack users with the whole directory at once
    (`users.list`), when that costs fewer calls than looking each one up in the reminder run."""
    try:
        found = slack_directory.refresh(
            context.engine, context.client, context.settings.slack.email_domains_map, context.now()
        )
    except SlackError as error:  # the reminder run looks the owners up one by one instead
        logger.warning("could not read the Slack directory: %s", error_code(error))
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
    settings = context.settings
    summary = reminders.run(
        engine=context.engine,
        policy=settings.policy,
        directory=context.directory,
        sender=context.messenger,
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
    settings = context.settings
    if not settings.slack.digest_channel:
        return
    posted = digest.run(
        engine=context.engine,
        policy=settings.policy,
        poster=context.digest_poster,
        channel=settings.slack.digest_channel,
        now=context.now(),
        tz=settings.slack.digest_timezone,
        chart=settings.slack.digest_chart,
    )
    logger.info("digest posted to %s: %s", settings.slack.digest_channel, posted.summary())


def enforcement_pass(context: JobContext, *, preview: bool = False) -> enforcement.EnforcementSummary:
    """One enforcement pass, as the hourly job and `tokenbot enforce` both run it."""
    settings = context.settings
    return enforcement.run(
        engine=context.engine,
        gateway_for=context.gateway_for,
        policy=settings.policy,
        notifier=context.enforcement_notifier,
        sender=context.messenger,
        admin_channel=settings.slack.admin_channel,
        now=context.now(),
        slack_clock=context.slack_clock,
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
    """Observed API usage, who uses each token and misuse findings, from the audit log
    (workspaces with `audit_warehouse_id`), daily."""
    results = audit_read.refresh_all(
        engine=context.engine, settings=context.settings, gateway_for=context.gateway_for, now=context.now()
    )
    post_misuse_findings(context)
    failed = [r for r in results if not r.ok]
    if failed:  # counted as a failed run; the other workspaces were refreshed
        raise RuntimeError("usage refresh failed for " + ", ".join(r.workspace for r in failed))


def post_misuse_findings(context: JobContext) -> int:
    """The misuse findings recorded and not posted yet, to the admins channel (each once);
    returns how many were posted."""
    channel = context.settings.slack.admin_channel
    if not channel or context.client is None:
        return 0
    notifier = SlackMisuseNotifier(context.client)
    posted = misuse.post_pending(engine=context.engine, notifier=notifier, channel=channel, now=context.now())
    if posted.posted or posted.failed:
        logger.info("misuse findings: %s posted, %s failed", posted.posted, posted.failed)
    return posted.posted


def rotations_pass(context: JobContext) -> list[decisions.Outcome]:
    """Revoke the old token of every rotation past its grace period, as the hourly job and
    `tokenbot rotations` both run it."""
    with db.session_scope(context.engine) as session:
        return decisions.complete_rotations(
            session=session,
            gateway_for=context.gateway_for,
            now=context.now(),
            dry_run=context.settings.dry_run,
        )


def rotations_due(context: JobContext) -> list[tuple[int, str | None]]:
    """(token, its replacement) of every rotation whose old token the pass would revoke now:
    `tokenbot rotations --dry-run`, which calls nothing and records nothing."""
    with Session(context.engine) as session:
        due = rotation.rotations_due(session, context.now())  # the pass's own choice
        return [(token_pk, new_token_id) for _, token_pk, new_token_id in due]


def rotations_job(context: JobContext) -> None:
    outcomes = rotations_pass(context)
    for outcome in outcomes:
        metrics.DECISIONS.labels(outcome.action, outcome.status).inc()
    if outcomes:
        logger.info("rotations: %s old token(s) revoked after their grace period", len(outcomes))


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

