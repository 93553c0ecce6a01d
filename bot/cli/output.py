"""How command results look on a terminal: rich tables and lines (the report as JSON or CSV
files: `bot/services/exports.py`).

User text (comments, names, ids, error text) reaches a terminal without control characters
(`bot.controls.strip`): an ESC sequence in a token's comment must not clear the screen or forge a
link.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot import controls
from bot.domain.deadlines import DEADLINE_LABELS
from bot.services.report import TokenView

if TYPE_CHECKING:  # the sync service is only a type here: `tokenbot report` need not import it
    from bot.services.enforcement import EnforcementSummary

class CleanConsole(Console):
    """A rich console whose printed text keeps its lines but loses every other control character:
    the CLI prints user text (comments, event ids, error text) through it."""

    def print(self, *objects: object, **options) -> None:  # type: ignore[override]
        cleaned = (controls.strip(o, keep="\n") if isinstance(o, str) else o for o in objects)
        super().print(*cleaned, **options)


def days_style(days: int) -> str:
    if days < 0:
        return "bold red"
    if days <= 3:
        return "red"
    if days <= 14:
        return "yellow"
    return "green"


def report_table(views: Sequence[TokenView], now: datetime) -> Table:
    table = Table(title=f"{len(views)} tokens, nearest deadline first", title_justify="left")
    for column in (
        "workspace",
        "token",
        "owner",
        "comment",
        "next deadline",
        "due (UTC)",
        "days left",
        "findings",
    ):
        table.add_column(column, overflow="fold", justify="right" if column == "days left" else "left")
    for view in views:
        nearest = view.evaluation.next_deadline
        days = nearest.days_left(now) if nearest else None
        table.add_row(
            _shown(view.workspace),
            _shown(view.token_id[:12]),
            _shown(view.owner or view.owner_id or "?"),
            _shown(view.comment[:40]),
            DEADLINE_LABELS[nearest.kind] if nearest else "-",
            nearest.due_at.strftime("%Y-%m-%d %H:%M") if nearest else "-",
            f"[{days_style(days)}]{days}[/]" if days is not None else "-",
            _shown(", ".join(view.evaluation.finding_codes)),
        )
    return table


def _shown(text: str) -> str:
    """User text in a rich table: no markup, no control characters."""
    return escape(controls.strip(text))


# ---------------------------------------------------------------------------------------------
# tokenbot enforce

HELD_WORDS = {
    "stale_sync": "its workspace's last sync was not clean",
    "hold": "an open request to the admins",
    "recent_use": "used too recently (policy.enforce_min_idle_days)",
    "clock_skew": "the local clock disagrees with Databricks' or Slack's",
    "breaker": "the enforcement breaker",
    "dry_run_recorded": "already recorded in an earlier dry run",
}


def printable(text: str | None) -> str:
    """Text from Databricks or people, safe on a terminal: no control characters."""
    return controls.strip(text or "")


def enforcement_lines(summary: EnforcementSummary, *, enforce: bool) -> list[str]:
    """One line per overdue token (what happened, or what held it back), then the totals."""
    lines = []
    for item in summary.tokens:
        what = str(item.result).replace("_", " ")
        if item.reason is not None:
            what += f" ({item.reason}: {HELD_WORDS.get(str(item.reason), item.reason)})"
        owner = f" of {printable(item.owner)}" if item.owner else ""
        message = f": {printable(item.message)}" if item.message and item.result != "revoked" else ""
        lines.append(
            f"{printable(item.workspace)}/{printable(item.token_id)}{owner}, {printable(item.rule)}, "
            f"due {item.due_at:%Y-%m-%d}: {what}{message}"
        )
    mode = "preview, nothing changed" if summary.preview else "dry run" if summary.dry_run else None
    held = ", ".join(f"{count} {reason}" for reason, count in sorted(summary.held.items())) or "none"
    lines.append(
        f"Enforcement {'on' if enforce else 'off'}{f' ({mode})' if mode else ''}: {summary.overdue} overdue, "
        + (
            f"{summary.revoked} revoked, {summary.failed} failed"
            if enforce
            else f"{summary.escalated} escalated to the admins channel"
        )
        + f"; held back: {held}."
    )
    if summary.clock_problem:
        lines.append(f"Stopped: the clock cannot be trusted: {printable(summary.clock_problem)}.")
    elif summary.breaker:
        state = "would trip" if summary.preview and not summary.breaker_tripped else "is tripped"
        lines.append(
            f"Stopped: the breaker {state}: {printable(summary.breaker)}. "
            "An admin re-arms it with `/tokens enforcement resume`."
        )
    if summary.notify_failed:
        lines.append(f"{summary.notify_failed} message(s) could not be delivered (see the log).")
    return lines
