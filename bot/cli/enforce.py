"""`tokenbot enforce`: one enforcement pass, as the hourly job runs it."""

from __future__ import annotations

import json
import sys

import typer
from rich.markup import escape

from bot.cli import output
from bot.cli.shared import EXIT_PARTIAL, NO_WORKSPACES, load_or_exit, open_database, out, usage_error


def enforce(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be revoked and what holds each token back; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the pass (every overdue token) as JSON."),
) -> None:
    """One enforcement pass, exactly as the hourly job runs it: revoke the overdue tokens the guards
    let through (with policy.enforce = false, escalate them), and say what held the others back
    (clock skew, breaker, stale sync, recent use, open request). Exit 1 if a revocation or a message
    failed, or a guard stopped the whole pass (the clock, the breaker)."""
    settings = load_or_exit()
    if not settings.workspaces:
        raise usage_error(NO_WORKSPACES)
    engine = open_database(settings)
    if settings.slack_bot_token is None:
        raise usage_error(
            "SLACK_BOT_TOKEN is not set: enforcement checks the clock against Slack's and tells "
            "owners and admins what it did"
        )
    from bot.jobs.runners import JobContext, enforcement_pass
    from bot.wiring import wire

    context = JobContext.over(wire(settings, engine))
    summary = enforcement_pass(context, preview=dry_run)
    if as_json:
        sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
    else:
        for line in output.enforcement_lines(summary, enforce=settings.policy.enforce):
            out.print(escape(line), highlight=False, soft_wrap=True)
    if summary.failed or summary.notify_failed or summary.stopped:
        raise typer.Exit(EXIT_PARTIAL)
