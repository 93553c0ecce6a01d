"""`tokenbot report`: live tokens with their deadlines and findings, as a table, JSON or CSV."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum

import typer
from sqlalchemy import Engine

from bot import clock, db
from bot.cli import output
from bot.cli.shared import err, load_or_exit, open_database, out
from bot.config import Settings
from bot.services import consumers, exports, report, windows


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
    """Write the report; returns how many tokens it shows. JSON and CSV stream: each token is
    written (to a temporary file, put in order at the end) as it is read, so memory stays flat
    however many tokens there are; the table is drawn whole."""
    now = clock.now()
    policy = settings.policy
    shown = 0
    with db.session_scope(engine) as session:
        where = [windows.due_by(policy, now, now + timedelta(days=days))] if days is not None else []
        views = report.iter_views(
            session=session,
            policy=policy,
            now=now,
            workspace=workspace,
            where=where,
            order_by=windows.by_id(session),
        )
        # Who uses each token: one query, a short list per token that has any.
        used = None
        if format is ReportFormat.json:
            used = consumers.report_field(session=session, workspace=workspace)

        def wanted() -> Iterator[report.TokenView]:
            nonlocal shown
            for view in views:
                if days is not None and not view.evaluation.due_within(now, days):
                    continue
                if owner and not report.owned_by(view, owner):
                    continue
                shown += 1
                yield view

        if format is ReportFormat.json:
            sys.stdout.writelines(exports.report_json(wanted(), policy, now, consumers=used))
        elif format is ReportFormat.csv:
            sys.stdout.writelines(exports.report_csv(wanted(), policy, now))
        else:
            table = report.by_nearest_deadline(wanted())
            if table:
                # Piped into a file or a pager, a table folded to 80 columns helps nobody.
                console = out if out.is_terminal else output.CleanConsole(width=200)
                console.print(output.report_table(table, now))
    return shown


def _anything_synced(engine: Engine) -> bool:
    from sqlalchemy import select

    from bot.models import Workspace

    with db.session_scope(engine) as session:
        return (
            session.execute(select(Workspace.name).where(Workspace.last_success_at.is_not(None))).first()
            is not None
        )
