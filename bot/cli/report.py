"""`tokenbot report`: live tokens with their deadlines and findings, as a table, JSON or CSV."""

from __future__ import annotations

import sys
from enum import StrEnum

import typer
from sqlalchemy import Engine

from bot import clock, db
from bot.cli import output
from bot.cli.shared import err, load_or_exit, open_database, out
from bot.config import Settings
from bot.services import consumers, exports, report


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def report_command(
    format: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f", help="table, json or csv."),  # noqa: A002
    days: int | None = typer.Option(None, "--days", min=0, help="Only tokens with a deadline within N days."),
    workspace: str | None = typer.Option(None, "--workspace", "-w", help="Only this workspace."),
    owner: str | None = typer.Option(
        None, "--owner", help="Only this owner (email, application id, Databricks id or Slack id)."
    ),
) -> None:
    """Live tokens with their deadlines and findings, from the database (run `tokenbot sync` first)."""
    settings = load_or_exit()
    engine = open_database(settings)
    with report.without_gc():  # 100,000 tokens build a large acyclic graph: see without_gc
        shown = _report(engine, settings, format, days=days, workspace=workspace, owner=owner)
    if not shown:
        err.print(
            "No live tokens match"
            + (f" a deadline within {days} days" if days is not None else "")
            + (" (nothing synced yet: run `tokenbot sync`)" if not _anything_synced(engine) else "")
            + "."
        )


def _report(
    engine: Engine,
    settings: Settings,
    format: ReportFormat,  # noqa: A002
    *,
    days: int | None,
    workspace: str | None,
    owner: str | None,
) -> int:
    """Write the report; returns how many tokens it shows. The views die when this returns, while
    the cycle collector is still off: alive, they would make its first pass walk all of them."""
    now = clock.now()
    with db.session_scope(engine) as session:
        views = report.token_views(
            session=session, policy=settings.policy, now=now, workspace=workspace, owner=owner
        )
        used = (
            consumers.report_field(session=session, workspace=workspace)
            if format is ReportFormat.json
            else None
        )
    if days is not None:
        views = report.due_within(views, now, days)
    views = report.by_nearest_deadline(views)
    _write_report(views, format, settings, now, used)
    return len(views)


def _write_report(views: list, format: ReportFormat, settings: Settings, now, used=None) -> None:  # noqa: A002
    if format is ReportFormat.json:
        sys.stdout.writelines(exports.report_json(views, settings.policy, now, consumers=used))
    elif format is ReportFormat.csv:
        sys.stdout.write(exports.report_csv(views, settings.policy, now))
    elif views:
        # Piped into a file or a pager, a table folded to 80 columns helps nobody.
        console = out if out.is_terminal else output.CleanConsole(width=200)
        console.print(output.report_table(views, now))


def _anything_synced(engine: Engine) -> bool:
    from sqlalchemy import select

    from bot.models import Workspace

    with db.session_scope(engine) as session:
        return (
            session.execute(select(Workspace.name).where(Workspace.last_success_at.is_not(None))).first()
            is not None
        )
