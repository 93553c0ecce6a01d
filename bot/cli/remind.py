"""`tokenbot remind`: one reminder run, as the scheduler runs it every 15 minutes."""

from __future__ import annotations

import dataclasses
import json
import sys

import typer
from rich.markup import escape

from bot import clock
from bot.cli.shared import EXIT_PARTIAL, load_or_exit, open_database, out, usage_error


def remind(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print who would get what; send and record nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's figures (and previews) as JSON."),
) -> None:
    """One reminder run: message each owner about every token whose reminder is due (one message
    per owner), escalate undecided ones to the admins channel. Exit 1 if some could not be sent."""
    settings = load_or_exit()
    engine = open_database(settings)
    if settings.slack_bot_token is None:
        raise usage_error(
            "SLACK_BOT_TOKEN is not set: tokenbot needs the app's bot token to find owners "
            "in Slack and message them"
        )
    from bot.services import reminders
    from bot.wiring import wire

    wiring = wire(settings, engine)
    summary = reminders.run(
        engine=engine,
        policy=settings.policy,
        directory=wiring.directory,
        sender=wiring.messenger,
        admin_channel=settings.slack.admin_channel,
        now=clock.now(),
        dry_run=dry_run,
    )
    if as_json:
        sys.stdout.write(json.dumps(dataclasses.asdict(summary), indent=2) + "\n")
    elif dry_run:
        for preview in summary.previews:
            out.print(escape(preview), highlight=False, soft_wrap=True)
        out.print(
            f"Dry run: {len(summary.previews)} message(s) for {summary.planned} reminder(s) would be sent; "
            f"{summary.held_for_quiet_hours} held for quiet hours. Nothing was sent or recorded."
        )
    else:
        out.print(
            f"Sent {summary.sent_messages} message(s) covering {summary.sent_notifications} reminder(s) "
            f"({summary.escalations} escalation(s)); {summary.failed} failed, {summary.left_pending} left "
            f"for the next run, {summary.held_for_quiet_hours} held for quiet hours."
            + (f" {summary.lookups_failed} owner lookup(s) failed and wait for the next run."
               if summary.lookups_failed else "")
        )
    if summary.failed or summary.left_pending or summary.lookups_failed:
        raise typer.Exit(EXIT_PARTIAL)
