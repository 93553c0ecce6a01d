"""The token report as files: a JSON array (`tokenbot report --format json`) and CSV (`--format
csv`, `/tokens export`). Both carry the contract rows of `bot.services.report`.

CSV follows RFC 4180 (CRLF rows, a field holding CR or LF quoted) and every text cell that a
spreadsheet would read as a formula (leading `= + - @`, tab, CR or LF) starts with a single quote
(OWASP, CSV injection); other control characters go (`bot.controls.strip`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from bot import controls
from bot.domain.policy import Policy
from bot.services import shadow
from bot.services.report import TokenView, contract_json, contract_rows, iso, without_gc

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


def report_json(
    views: Sequence[TokenView],
    policy: Policy,
    now: datetime,
    consumers: Mapping[tuple[str, str], list[dict[str, Any]]] | None = None,
) -> Iterator[str]:
    """A JSON array, one token per line, streamed a thousand lines per write (a write per line
    costs a 100,000-token report about 0.2 s more when its output goes into a pipe). Each token
    has `shadow` (`bot.services.shadow`) and `consumers` (`bot.services.consumers.as_json`; []
    when none were seen or none given)."""
    lines = shadow.with_shadow(views, contract_json(views, policy, now))
    lines = _with_consumers(views, lines, consumers or {})
    yield "["
    separator = "\n"
    with without_gc():
        while chunk := list(islice(lines, 1000)):
            yield separator + ",\n".join(chunk)
            separator = ",\n"
    yield "\n]\n"


def _with_consumers(
    views: Sequence[TokenView],
    lines: Iterator[str],
    consumers: Mapping[tuple[str, str], list[dict[str, Any]]],
) -> Iterator[str]:
    for view, line in zip(views, lines, strict=True):  # each line is one JSON object: "{...}"
        used = consumers.get((view.workspace, view.token_id))
        yield line[:-1] + ', "consumers": ' + (json.dumps(used) if used else "[]") + "}"


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
