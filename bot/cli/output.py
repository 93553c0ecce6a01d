"""How command results look on a terminal and in files: rich tables, CSV, JSON.

User text (comments, names, ids, error text) reaches a terminal without control characters
(`bot.controls.strip`): an ESC sequence in a token's comment must not clear the screen or forge a
link. CSV follows RFC 4180 (CRLF rows, a field holding CR or LF quoted) and every text cell that a
spreadsheet would read as a formula (leading `= + - @`, tab, CR or LF) starts with a single quote
(OWASP, CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot import controls
from bot.domain.deadlines import DEADLINE_LABELS
from bot.domain.policy import Policy
from bot.services.report import TokenView, contract_json, contract_rows, iso, without_gc

if TYPE_CHECKING:  # the sync service is only a type here: `tokenbot report` need not import it
    from bot.services.enforcement import EnforcementSummary
    from bot.services.inventory import SyncResult

CSV_COLUMNS = (
    "workspace",
    "token_id",
    "owner",
    "owner_slack_id",
    "comment",
    "created_at",
    "expires_at",
    "last_used_on",
    "scopes",
    "inferred_scopes",
    "autoscope_state",
    "next_deadline",
    "next_due_at",
    "days_left",
    "deadlines",
    "findings",
)


class CleanConsole(Console):
    """A rich console whose printed text keeps its lines but loses every other control character:
    the CLI prints user text (comments, event ids, error text) through it."""

    def print(self, *objects: object, **options) -> None:  # type: ignore[override]
        cleaned = (controls.strip(o, keep="\n") if isinstance(o, str) else o for o in objects)
        super().print(*cleaned, **options)


def sync_line(result: SyncResult) -> str:
    error = controls.strip(result.error or "")
    if result.held:
        return f"{result.workspace}: HELD: {error}"
    if not result.ok:
        return f"{result.workspace}: FAILED after {result.seconds:.1f} s: {error}"
    return (
        f"{result.workspace}: {result.tokens} tokens, {result.new} new, {result.gone} gone, "
        f"{result.changed} changed ({result.narrowed} narrowed) in {result.seconds:.1f} s"
    )


def report_json(views: Sequence[TokenView], policy: Policy, now: datetime) -> Iterator[str]:
    """A JSON array, one token per line, streamed a thousand lines per write (a write per line
    costs a 100,000-token report about 0.2 s more when its output goes into a pipe)."""
    lines = contract_json(views, policy, now)
    yield "["
    separator = "\n"
    with without_gc():
        while chunk := list(islice(lines, 1000)):
            yield separator + ",\n".join(chunk)
            separator = ",\n"
    yield "\n]\n"


def report_csv(views: Sequence[TokenView], policy: Policy, now: datetime) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for view, row in zip(views, contract_rows(views, policy, now), strict=True):
        nearest = view.evaluation.next_deadline
        cells = [
            row["workspace"],
            row["token_id"],
            row["owner"] or "",
            row["owner_slack_id"] or "",
            row["comment"],
            row["created_at"] or "",
            row["expires_at"] or "",
            row["last_used_on"] or "",
            " ".join(row["scopes"]),
            " ".join(row["inferred_scopes"]),
            row["autoscope_state"] or "",
            nearest.kind if nearest else "",
            iso(nearest.due_at) if nearest else "",
            nearest.days_left(now) if nearest else "",
            "; ".join(f"{d['kind']} {d['due_at']}" for d in row["deadlines"]),
            " ".join(row["findings"]),
        ]
        writer.writerow([_spreadsheet_safe(cell) if isinstance(cell, str) else cell for cell in cells])
    return buffer.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r", "\n")


def _spreadsheet_safe(text: str) -> str:
    """A cell of user text: never run by a spreadsheet as a formula, nor a terminal's command.
    Line breaks stay (the writer quotes the cell); other control characters go. A formula behind
    blanks counts too: some spreadsheets trim them."""
    cleaned = controls.strip(text, keep="\r\n")
    risky = text.startswith(CONTROL_STARTS) or cleaned.lstrip().startswith(FORMULA_STARTS)
    return "'" + cleaned if risky else cleaned


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
