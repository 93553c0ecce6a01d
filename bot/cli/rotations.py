"""`tokenbot rotations`: revoke the old token of every rotation past its grace period, as the
hourly `rotations` job does (for deployments that run the CLI from cron, or `serve --no-scheduler`)."""

from __future__ import annotations

import json
import sys

import typer
from rich.markup import escape
from sqlalchemy import select

from bot import db
from bot.cli.output import printable
from bot.cli.shared import EXIT_PARTIAL, NO_WORKSPACES, load_or_exit, open_database, out, usage_error
from bot.models import Token
from bot.services import decisions


def rotations(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say which old tokens would be revoked; change and record nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one object per old token as JSON."),
) -> None:
    """Revoke the old token of each service principal's rotation whose grace period
    (policy.rotation_grace_hours) has passed, exactly as the hourly job does. Exit 1 if a
    revocation failed (it is tried again next time)."""
    settings = load_or_exit()
    if not settings.workspaces:
        raise usage_error(NO_WORKSPACES)
    engine = open_database(settings)
    from bot.jobs.runners import JobContext, rotations_due, rotations_pass
    from bot.wiring import wire

    context = JobContext.over(wire(settings, engine))
    if dry_run:
        outcomes = []
        due = rotations_due(context)
    else:
        outcomes = rotations_pass(context)
        due = [(outcome.token_pk, None) for outcome in outcomes]
    with db.session_scope(engine) as session:
        tokens = {
            token.id: token
            for token in session.execute(select(Token).where(Token.id.in_([pk for pk, _ in due]))).scalars()
        }
        if dry_run:
            rows = [_would(tokens.get(pk), new_id) for pk, new_id in due]
        else:
            rows = [_row(outcome, tokens.get(outcome.token_pk or -1)) for outcome in outcomes]
    failed = sum(1 for outcome in outcomes if outcome.status == decisions.FAILED)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        for row in rows:
            line = f"{row['workspace']}/{row['token_id']}: {row['result']}: {row['message']}"
            out.print(escape(printable(line)), highlight=False, soft_wrap=True)
        verb = "would be revoked" if dry_run else "revoked"
        done = sum(1 for row in rows if row["result"] in ("revoked", "would_revoke"))
        out.print(
            f"{len(rows)} rotation(s) past their grace period: {done} old token(s) {verb}, {failed} failed."
        )
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def _row(outcome: decisions.Outcome, token: Token | None) -> dict:
    revoked = outcome.status == decisions.APPLIED and not outcome.dry_run
    return {
        "workspace": token.workspace if token else None,
        "token_id": token.token_id if token else None,
        "result": "revoked" if revoked else "dry_run" if outcome.dry_run else outcome.status,
        "message": outcome.message,
        "decision_id": outcome.decision_id,
    }


def _would(token: Token | None, new_token_id: str | None) -> dict:
    return {
        "workspace": token.workspace if token else None,
        "token_id": token.token_id if token else None,
        "result": "would_revoke",
        "message": f"would be revoked: replaced by {new_token_id}",
        "decision_id": None,
    }
