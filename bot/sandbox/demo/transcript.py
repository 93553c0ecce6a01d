"""What the demo prints about itself: the verdict of each step, the decision log read from the
database, and Slack messages and delivery counts in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, select

from bot import db
from bot.models import Decision, Token


@dataclass
class Verdict:
    """What one step of the story expected, what happened, and whether that was right."""

    step: str
    expected: str
    happened: str
    ok: bool


def print_decision_log(console: Console, engine: Engine) -> None:
    """Every decision the bot recorded, read back from its database."""
    table = Table(title="Decision log (from the database)", title_justify="left")
    for column in ("#", "action", "status", "actor", "role", "token", "detail"):
        table.add_column(column, overflow="fold")
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(Decision, Token.token_id)
            .outerjoin(Token, Token.id == Decision.token_pk)
            .order_by(Decision.id)
        ).all()
    for decision, token_id in rows:
        detail = decision.parameters.get("refused") or decision.parameters.get("reason") or ""
        table.add_row(
            str(decision.id),
            decision.action,
            decision.status,
            decision.actor_slack_id,
            decision.actor_role,
            (token_id or "")[:10],
            escape(str(detail))[:60],
        )
    console.print(table)


def print_verdicts(console: Console, verdicts: list[Verdict]) -> None:
    """One row per step: expected, happened, ok or FAILED."""
    table = Table(title="Verdict", title_justify="left")
    for column in ("step", "expected", "happened", ""):
        table.add_column(column, overflow="fold")
    for verdict in verdicts:
        table.add_row(
            verdict.step,
            escape(verdict.expected),
            escape(verdict.happened),
            "[green]ok[/green]" if verdict.ok else "[red]FAILED[/red]",
        )
    console.print(table)


def as_shown(message: dict[str, Any]) -> str:
    """A stored Slack message as Slack shows it: its blocks (else its text), then its files."""
    from bot.slack.blocks import as_text

    blocks = message.get("blocks") or []
    if not blocks and message.get("text"):
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": message["text"]}}]
    lines = [as_text(blocks).rstrip("\n")] if blocks else []
    for file in message.get("files") or []:
        lines.append(f"[file] {file.get('title') or file.get('name')} ({file.get('name')})")
    return "\n".join(lines) + "\n"


def delivered(counts: dict[str, int]) -> str:
    """How many messages each owner got, in words: "6 owners got one message each"."""
    if not counts:
        return "no owner got a message"
    if set(counts.values()) == {1}:
        return f"{len(counts)} owner{'s' if len(counts) > 1 else ''} got one message each"
    return "owners got " + ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
